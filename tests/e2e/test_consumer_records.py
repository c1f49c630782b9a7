"""Consumer records beyond one run: ``report merge`` keeps them, rebuilds the
consumer matrix and names the cells two runs of the same builds disagree about;
a consumer cell whose xdist worker died still gets its record."""

from __future__ import annotations

import copy
import os
import signal
import time
from pathlib import Path

from helpers.suite_runner import SuiteRun, consumer_vectors
from test_consumers import MIGRATED, REFUSED, _record

from qmpcompat.report.merge import merge
from qmpcompat.report.results import environment, results_document
from qmpcompat.report.summary import verdict
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
    new = _run(("11.1.3",), [_record("CP-0001", "11.1.3", "11.1.3", REFUSED, "xfailed")])
    merged = merge([(Path("old.json"), old), (Path("new.json"), new)])
    assert [(c["source"], c["outcome"]) for c in merged["consumers"]] == [
        ("10.0.13", "passed"), ("11.1.3", "xfailed")]
    cells = {(c["source"], c["destination"]): c["mark"] for c in merged["consumer_matrix"]["cells"]}
    assert cells == {("10.0.13", "10.0.13"): "migrated",
                     ("11.1.3", "11.1.3"): "known None: refused at src-migrate"}
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


def test_a_consumer_cell_whose_worker_died_gets_its_record(tmp_path: Path) -> None:
    """The worker running a consumer cell killed mid-migration: the cell is an
    error in results.json and in the consumer matrix, rebuilt from its test id."""
    marker = tmp_path / "stalled"
    vectors = consumer_vectors(tmp_path)
    run = SuiteRun(tmp_path, "-p", "helpers.fault_consumer", "-n", "2", vectors=vectors, suites="sid",
                   env={"QMPCOMPAT_TEST_STALL_CONSUMER": str(marker), "PYTHONPATH": TESTS},
                   paths=("suites/test_consumers.py",))
    deadline = time.monotonic() + 180
    while not marker.exists() or not marker.read_text():
        assert run.proc.poll() is None, run.output
        assert time.monotonic() < deadline, "the run never reached the consumer cell"
        time.sleep(0.05)
    worker = int(marker.read_text().split()[0])
    assert worker != run.proc.pid
    os.kill(worker, signal.SIGKILL)
    assert run.wait(300) == 1, run.output
    run.assert_clean()
    doc = run.results()
    lost = [r for r in doc["consumers"] if r["outcome"] == "error"]
    assert len(lost) == 1 and "crashed" in lost[0]["message"], doc["consumers"]
    assert lost[0]["profile"] == "CP-0002" and lost[0]["location"].startswith("vectors/consumers/")
    assert [c["mark"] for c in doc["consumer_matrix"]["cells"]] == ["FAIL: not run"]
