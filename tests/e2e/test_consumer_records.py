"""Consumer records beyond one run: ``report merge`` keeps them, rebuilds the
consumer matrix and names the cells two runs of the same builds disagree about;
a consumer cell whose xdist worker died still gets its record."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import time
from pathlib import Path

from helpers.suite_runner import REPO, SuiteRun, consumer_vectors, copy_notes
from test_consumers import MIGRATED, REFUSED, _record

from qmpcompat.report.merge import merge
from qmpcompat.report.results import environment, results_document
from qmpcompat.report.summary import render_summary, verdict
from qmpcompat.resultdoc import BinaryJSON, ConsumerJSON, ResultsJSON

TESTS = str(Path(__file__).resolve().parents[1])  # helpers.fault_consumer


def _run(labels: tuple[str, ...], consumers: list[ConsumerJSON]) -> ResultsJSON:
    builds: list[BinaryJSON] = [{"binary": f"/b/{v}", "version": v, "version_line": "",
                                 "package": f"Debian {v}"} for v in labels]
    for rec in consumers:
        rec["source_package"] = f"Debian {rec['source_version']}"
        rec["destination_package"] = f"Debian {rec['destination_version']}"
    return results_document(environment(builds, "rev", []), [], time.time(),
                            {"consumers": consumers})


def test_merge_keeps_the_consumer_cells_and_rebuilds_their_matrix() -> None:
    old = _run(("10.0.13",), [_record("CP-0001", "10.0.13", "10.0.13", MIGRATED)])
    known = _record("CP-0001", "11.1.3", "11.1.3", REFUSED, "xfailed")
    known["defect"] = "KD-0014"
    new = _run(("11.1.3",), [known])
    merged = merge([(Path("old.json"), old), (Path("new.json"), new)])
    assert [(c["source"], c["outcome"]) for c in merged["consumers"]] == [
        ("10.0.13", "passed"), ("11.1.3", "xfailed")]
    cells = {(c["source"], c["destination"]): c["mark"] for c in merged["consumer_matrix"]["cells"]}
    assert cells == {("10.0.13", "10.0.13"): "migrated",
                     ("11.1.3", "11.1.3"): "known KD-0014: refused at src-migrate"}
    assert merged["consumer_matrix"]["versions"] == ["10.0.13", "11.1.3"]
    assert merged["consumer_disagreements"] == [] and verdict(merged).ok


def test_merge_names_a_consumer_cell_two_runs_disagree_about() -> None:
    one = _run(("11.1.3",), [_record("CP-0002", "11.1.3", "11.1.3", MIGRATED)])
    two = copy.deepcopy(one)
    two["consumers"][0].update({"outcome": "failed", "observed": REFUSED})
    merged = merge([(Path("a.json"), one), (Path("b.json"), two)])
    assert merged["consumers"][0]["outcome"] == "failed"  # the worse outcome stands
    assert merged["consumer_disagreements"] == [{
        "profile": "CP-0002", "source": "11.1.3", "destination": "11.1.3",
        "runs": [{"file": "a.json", "outcome": "passed"}, {"file": "b.json", "outcome": "failed"}]}]
    assert "1 consumer cells differ between runs of the same builds" in verdict(merged).reasons
    summary = render_summary(merged)  # where a person reads which cells
    assert "### Consumer cells runs disagree about" in summary
    assert "| CP-0002 | 11.1.3 | 11.1.3 | passed (a.json), failed (b.json) |" in summary


def test_two_runs_of_a_consumer_cell_agree_whatever_the_replies_timings() -> None:
    """query-migrate's timings in a cell's replies change every run; they are not a
    disagreement, the step and QEMU's answer are."""
    def run(total_time: int, desc: str) -> ResultsJSON:
        replies = [{"side": "source", "step": "src-poll", "execute": "query-migrate",
                    "return": {"status": "completed", "total-time": total_time}}]
        return _run(("11.1.3",), [_record("CP-0002", "11.1.3", "11.1.3",
                                          {**REFUSED, "desc": desc, "replies": replies})])
    same = merge([(Path("a.json"), run(13, "x")), (Path("b.json"), run(31, "x"))])
    assert same["consumer_disagreements"] == [] and verdict(same).ok
    other = merge([(Path("a.json"), run(13, "x")), (Path("b.json"), run(13, "y"))])
    assert len(other["consumer_disagreements"]) == 1


def _stalled_run(tmp_path: Path, suite: str, side: str, *args: str) -> SuiteRun:
    """``suite`` on sid with two workers (``args`` added), its first cell stalled at
    ``side``'s migrate and the worker running it killed; the finished run."""
    marker = tmp_path / "stalled"
    vectors = consumer_vectors(tmp_path)
    shutil.copytree(REPO / "vectors" / "cross-version", vectors / "cross-version")
    copy_notes(vectors)  # the notes the pair vectors name too
    run = SuiteRun(tmp_path, "-p", "helpers.fault_consumer", "-n", "2", *args, vectors=vectors,
                   suites="sid",
                   env={"QMPCOMPAT_TEST_STALL_CONSUMER": str(marker), "PYTHONPATH": TESTS,
                        "QMPCOMPAT_TEST_STALL_SIDE": side},
                   paths=(suite,))
    deadline = time.monotonic() + 180
    while not marker.exists() or not marker.read_text():
        assert run.proc.poll() is None, run.output
        assert time.monotonic() < deadline, "the run never reached a cell"
        time.sleep(0.05)
    worker = int(marker.read_text().split()[0])
    assert worker != run.proc.pid
    os.kill(worker, signal.SIGKILL)
    assert run.wait(300) == 1, run.output
    run.assert_clean()
    return run


def test_a_consumer_cell_whose_worker_died_gets_its_record(tmp_path: Path) -> None:
    """The worker running a consumer cell killed mid-migration: the cell is an
    error in results.json and in the consumer matrix, rebuilt from its test id."""
    doc = _stalled_run(tmp_path, "suites/test_consumers.py", "source").results()
    lost = [r for r in doc["consumers"] if r["outcome"] == "error"]
    assert len(lost) == 1 and "crashed" in lost[0]["message"], doc["consumers"]
    assert lost[0]["profile"] == "CP-0002" and lost[0]["location"].startswith("vectors/consumers/")
    assert [c["mark"] for c in doc["consumer_matrix"]["cells"]] == ["FAIL: not run"]


def test_a_cross_version_cell_whose_worker_died_gets_its_record(tmp_path: Path) -> None:
    """The same for a cell of the pair matrix: an error record and a failed verdict,
    never a run that says PASS while pytest failed."""
    # two cells (each pair vector's uri/uri), not every form: one dies, the other is recorded
    doc = _stalled_run(tmp_path, "suites/test_pairs.py", "subject", "-k", "uri-uri").results()
    assert len(doc["pairs"]) == 2, doc["pairs"]
    lost = [r for r in doc["pairs"] if r["outcome"] == "error"]
    assert len(lost) == 1 and "crashed" in lost[0]["message"], doc["pairs"]
    assert lost[0]["vector"].startswith("XV-") and not verdict(doc).ok
