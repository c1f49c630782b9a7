"""A sharded run on real builds: two shards (one with two xdist workers) of a
small selection, merged, are the whole run: every case once with the whole
run's outcomes, the same tables, matrices, schema history and verdict; each
shard provisioned and started only the builds its part of the plan needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.shared import Shared
from helpers.suite_runner import run_suite

from qmpcompat.cli import main
from qmpcompat.report.consumers import consumer_matrix
from qmpcompat.report.matrix import matrix
from qmpcompat.report.results import read_results
from qmpcompat.report.summary import verdict

SUITES = "bookworm,trixie,sid"
# One vector, the derived cases of one kind, one pair vector in one form (uri to uri) and
# one consumer profile: cases on each build and cells between every two, cheap enough to
# run three times.
SELECTION = ("-k", "MI-0002 or D-migrate-incoming-missing or XV-0001-uri-uri or CP-0001")
PATHS = ("suites",)


def _cases(doc: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """Every case, cross-version cell and consumer cell of a run: its outcome."""
    out = {("case", r["vector"], r["qemu"]): r["outcome"] for r in doc["results"]}
    out |= {("pair", r["vector"], r["form"], r["source"], r["destination"]): r["outcome"]
            for r in doc.get("pairs", [])}
    out |= {("consumer", r["profile"], r["source"], r["destination"]): r["outcome"]
            for r in doc.get("consumers", [])}
    return out


@pytest.fixture
def runs(shared: Shared) -> dict[str, Path]:
    """The whole run and its two shards, made once per session (both tests read
    them; a module-scoped fixture would make them again on each xdist worker)."""

    def make(root: Path) -> None:
        for name, args in (("whole", ()), ("1", ("--qmpcompat-shard", "1/2")),
                           ("2", ("--qmpcompat-shard", "2/2", "-n", "2"))):
            rc, text, _doc = run_suite(root / name, *SELECTION, *args, suites=SUITES, paths=PATHS)
            assert rc == 0, text[-3000:]

    root = shared.once("shard-runs", make)
    return {name: root / name / "reports" / "results.json" for name in ("whole", "1", "2")}


def test_shards_merged_are_the_whole_run(runs: dict[str, Path], tmp_path: Path) -> None:
    assert main(["report", "merge", str(runs["1"]), str(runs["2"]), "-o", str(tmp_path)]) == 0
    whole, merged = read_results(runs["whole"]), read_results(tmp_path / "results.json")
    shards = [read_results(runs[k]) for k in ("1", "2")]
    parts = [_cases(s) for s in shards]
    assert not set(parts[0]) & set(parts[1])  # every case in one shard ...
    assert parts[0] | parts[1] == _cases(merged) == _cases(whole)  # ... and the whole run's
    assert len(_cases(whole)) > 40 and {k[0] for k in _cases(whole)} == {"case", "pair", "consumer"}
    for key in ("totals", "claims", "schema_history", "schema_timeline"):
        assert merged[key] == whole[key], key
    assert matrix(merged["pairs"]) == matrix(whole["pairs"])
    assert consumer_matrix(merged["consumers"]) == consumer_matrix(whole["consumers"])
    assert [b["request"] for b in merged["environment"]["binaries"]] == \
        [b["request"] for b in whole["environment"]["binaries"]]
    assert (verdict(merged).ok, verdict(merged).reasons) == (verdict(whole).ok, verdict(whole).reasons)
    assert [r["modes"]["persistent"] for r in merged["environment"]["runs"]] == [True, True]


def test_each_shard_starts_only_its_builds(runs: dict[str, Path]) -> None:
    shards = [json.loads(runs[k].read_text()) for k in ("1", "2")]
    assert shards[0]["shard"]["plan"] == shards[1]["shard"]["plan"]
    keys = shards[0]["shard"]["keys"]
    assert len(keys) == 3
    for doc in shards:
        started = [b["request"] for b in doc["environment"]["binaries"]]
        labels = {b["run_label"] or b["version"] for b in doc["environment"]["binaries"]}
        assert set(started) <= set(keys) and set(doc["shard"]["schemas"]) == labels
        ran = {lb for r in doc["results"] for lb in [r["qemu"]]}
        ran |= {lb for r in [*doc["pairs"], *doc["consumers"]] for lb in (r["source"], r["destination"])}
        assert ran <= labels  # every case on a build the shard started
    assert min(len(d["environment"]["binaries"]) for d in shards) < 3  # not every build everywhere
