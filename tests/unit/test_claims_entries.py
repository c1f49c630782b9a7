"""Known defects and cross-version pair vectors say what they rest on, as
expectations do: observed-on / inferred-from in the JSON Schemas, the history
lint holds them against every known release (a planted contradiction, an
observation of a version never run and unmarked pairs are named with the entry,
the release and the fact), and runs count and refuse them like any claim."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from qmpcompat.claims.entries import PairClaim, check_pair_claim, entry_problems
from qmpcompat.claims.history import known_releases
from qmpcompat.claims.observe import observations, record
from qmpcompat.cli import main
from qmpcompat.report.results import claim_totals
from qmpcompat.types import Outcome, Version
from qmpcompat.vectors.basis import defect_basis, pair_basis, refuse_inferred
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.match import Verdict
from qmpcompat.vectors.pairs import PairVector
from qmpcompat.vectors.versions import VersionRange, pair_label
from qmpcompat.vectors.yamlfile import dump_canonical, editable_yaml, load_yaml

RELEASES = known_releases()


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "vectors"
    shutil.copytree(default_root(), root, ignore=shutil.ignore_patterns("schema"))
    return root


def _edit(path: Path, key: str, ident: str, **changes: Any) -> None:
    """Change (or with None, drop) keys of the item ``ident`` of list ``key`` in ``path``."""
    data = editable_yaml(path)
    item = next(i for i in data[key] if i["id"] == ident)
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    path.write_text(dump_canonical(data))


def _lint(root: Path, capsys: pytest.CaptureFixture[str], ident: str) -> list[str]:
    assert main(["lint", "--vectors", str(root)]) == 1
    return [ln for ln in capsys.readouterr().out.splitlines() if f" {ident}: " in ln]


def test_the_committed_defects_and_pairs_contradict_no_release() -> None:
    assert entry_problems(load(), RELEASES) == []


def test_a_defect_must_say_what_it_rests_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The rule is the vector file schema's (known-defects.schema.json refers to it)."""
    root = _copy(tmp_path)
    _edit(root / "known-defects.yaml", "defects", "KD-0003", observed_on=None, inferred_from=None)
    lines = _lint(root, capsys, "KD-0003")
    assert any("schema: defects/2" in ln for ln in lines), lines
    assert any("KD-0003: the defect says neither where it was observed (observed-on) nor what it "
               "is inferred from (inferred-from)" in ln for ln in lines), lines
    assert any("KD-0003: history: QEMU 10.0.0: records crash for >=10.0 (vector M-0050); 10.0.0 is "
               "not in its observed-on" in ln for ln in lines), lines


def test_a_defect_a_release_contradicts_names_it(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A crash recorded from 9.0 on: 9.0 to 9.2 reject a cpr channel type before any
    command code runs, so no build of them can crash on it."""
    root = _copy(tmp_path)
    _edit(root / "known-defects.yaml", "defects", "KD-0003", versions=">=9.0")
    lines = [ln for ln in _lint(root, capsys, "KD-0003") if "history" in ln]
    assert [ln.split(": history: ")[1].split(":")[0] for ln in lines] == \
        ["QEMU 9.0.0", "QEMU 9.1.0", "QEMU 9.2.0"], lines
    assert lines[0].startswith("vectors/known-defects.yaml:")
    assert ("records crash for >=9.0 (vector M-0050), but the input visitor of that release "
            "(QEMU 9.0.0 as recorded by libvirt") in lines[0]
    assert "GenericError: Parameter 'channel-type' does not accept value 'cpr'" in lines[0]


def test_an_observation_needs_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """10.0.0 is a recorded release nobody ran here; 9.2.0 neither."""
    root = _copy(tmp_path)
    _edit(root / "known-defects.yaml", "defects", "KD-0003", observed_on=["10.0.0", "10.0.2"])
    data = editable_yaml(root / "cross-version" / "pairs.yaml")
    data["pairs"][1]["expect"][0]["observed-on"] += ["9.2.0->10.0.13"]
    (root / "cross-version" / "pairs.yaml").write_text(dump_canonical(data))
    vs = load(root)
    line = next(d.line for d in vs.defects if d.id == "KD-0003")
    problems = [str(p) for p in entry_problems(vs, RELEASES)]
    assert [p for p in problems if "KD-0003" in p] == [
        f"vectors/known-defects.yaml:{line}: KD-0003: history: QEMU 10.0.0: observed-on names 10.0.0, "
        "but no build of 10.0.0 was run here (no committed baseline in vectors/schema/): an "
        "observation needs a run; commit the build's baseline (qmpcompat snapshot QEMU -o "
        "vectors/schema/qemu-10.0.0.json) with the run that observed it, or move the version to "
        "inferred-from"]
    assert any("XV-0002: history: QEMU 9.2.0: observed-on names 9.2.0->10.0.13, but no build of "
               "9.2.0 was run here" in p for p in problems), problems


def test_unobserved_pairs_must_say_they_are_inferred(tmp_path: Path) -> None:
    """XV-0002 runs uri/uri on every known release: 24 x 24 pairs, of which the
    default builds' 25 are observed."""
    root = _copy(tmp_path)
    data = editable_yaml(root / "cross-version" / "pairs.yaml")
    claim = data["pairs"][1]["expect"][0]
    claim.pop("inferred-from")
    (root / "cross-version" / "pairs.yaml").write_text(dump_canonical(data))
    [problem] = [str(p) for p in entry_problems(load(root), RELEASES) if "XV-0002" in str(p)]
    pairs = len(RELEASES) ** 2 - len(claim["observed-on"])
    assert f"XV-0002: history: QEMU 4.2.0->4.2.0: claims migration completed for sources *, " \
           f"destinations *; {pairs} pairs of known releases it covers are not in its " \
           f"observed-on (4.2.0->4.2.0, 4.2.0->5.0.0, 4.2.0->5.1.0, 4.2.0->5.2.0 and " \
           f"{pairs - 4} more)" in problem


def test_a_form_a_release_rejects_contradicts_a_pair_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the channels form not n/a on 8.2 (its migrate still requires uri), 8.2.0's
    schema would contradict XV-0001's claim of a completed migration in it."""
    pv = next(p for p in load().pairs if p.id == "XV-0001")
    every = VersionRange.parse(None)
    claim = PairClaim(pv, every, every, ("channels/uri",), "claims migration completed", (), "x" * 10)
    assert check_pair_claim(claim, RELEASES) == []
    monkeypatch.setattr(PairVector, "needs", lambda self, form: ((), ()))
    found = check_pair_claim(claim, RELEASES)
    assert [r for r, _m in found if "source" in _m][:1] == ["4.2.0"]  # no channels at all yet
    [msg] = [m for r, m in found if r == "8.2.0"]
    assert msg.startswith("claims migration completed in form channels/uri, but the source's "
                          "migrate is rejected there (QEMU 8.2.0 as recorded by libvirt")
    assert msg.endswith("GenericError: Parameter 'uri' is missing (migrate/arg-type/uri is mandatory)")


def test_what_a_defect_or_a_pair_rests_on_and_strict_mode() -> None:
    vs = load()
    kd = next(d for d in vs.defects if d.id == "KD-0013")
    pv = next(p for p in vs.pairs if p.id == "XV-0002")
    exp = pv.expect[0]
    src, dst = Version(10, 0, 13), Version(11, 1, 3)
    assert kd.seen_on(src, dst) and defect_basis(kd, src, dst).kind == "observed"
    later = defect_basis(kd, src, Version(11, 2, 0))
    assert later.kind == "inferred" and "10.0.13->11.2.0" in later.source
    assert pair_label(src, dst) in exp.observed_on and pair_basis(exp, src, dst).kind == "observed"
    unrun = pair_basis(exp, Version(9, 2, 0), dst)
    assert unrun.kind == "inferred" and exp.inferred_from and exp.inferred_from in unrun.source
    known = Verdict(Outcome.XFAILED, "known defect KD-0013", "migration completed", "KD-0013")
    refused = refuse_inferred(known, later)
    assert refused.outcome == Outcome.FAILED and "strict mode refuses an inferred claim: the binary " \
        "did what known defect KD-0013 records" in refused.message
    assert refuse_inferred(known, defect_basis(kd, src, dst)) is known


def test_a_cell_counts_for_both_its_builds() -> None:
    cell = {"source": "10.0.13", "destination": "11.1.3", "basis": {"kind": "inferred", "source": ""}}
    diagonal = {**cell, "destination": "10.0.13", "basis": {"kind": "observed", "source": ""}}
    case = {"qemu": "11.1.3", "basis": {"kind": "observed", "source": ""}}
    totals = claim_totals([case], [cell, diagonal])
    assert totals == {"10.0.13": {"observed": 1, "schema": 0, "inferred": 1},
                      "11.1.3": {"observed": 1, "schema": 0, "inferred": 1}}


def test_observe_records_pairs_and_defects(tmp_path: Path) -> None:
    """A pair is observed when every cell of it passed; a defect when its case showed it."""
    root = _copy(tmp_path)
    for ident in ("KD-0003", "KD-0013"):
        _edit(root / "known-defects.yaml", "defects", ident, observed_on=None)
    data = editable_yaml(root / "cross-version" / "pairs.yaml")
    for raw in data["pairs"]:
        raw["expect"][0].pop("observed-on", None)
    (root / "cross-version" / "pairs.yaml").write_text(dump_canonical(data))
    vs = load(root)

    def cell(vector: str, form: str, src: str, dst: str, outcome: str,
             defect: str | None = None) -> dict[str, Any]:
        return {"vector": vector, "form": form, "source_version": src, "destination_version": dst,
                "outcome": outcome, "defect": defect}

    doc = {"environment": {"vector_revision": vs.revision()},
           "results": [{"vector": "M-0050", "qemu_version": "11.1.3", "outcome": "xfailed",
                        "defect": "KD-0003"}],
           "pairs": [cell("XV-0001", "uri/uri", "7.2.22", "11.1.3", "passed"),
                     cell("XV-0001", "uri/channels", "7.2.22", "11.1.3", "skipped"),
                     cell("XV-0001", "uri/uri", "11.1.3", "10.0.13", "passed"),
                     cell("XV-0001", "channels/uri", "11.1.3", "10.0.13", "failed"),
                     cell("XV-0001", "uri/uri", "10.0.13", "11.1.3", "xfailed", "KD-0013"),
                     cell("XV-0001", "channels/uri", "10.0.13", "11.1.3", "xfailed", "KD-0013")]}
    seen = observations(doc, vs)
    assert [str(o) for o in seen] == [
        "KD-0003 (>=10.0): observed on 11.1.3",
        "KD-0013 (==10.0.13): observed on 10.0.13->11.1.3",
        "XV-0001 (sources *, destinations *): observed on 7.2.22->11.1.3"]  # not 11.1.3->10.0.13
    parsed = load_yaml(root / "known-defects.yaml")  # the parse every reader of the file shares
    as_parsed = copy.deepcopy(parsed)
    changed = record(vs, seen)
    assert sorted(p.name for p in changed) == ["known-defects.yaml", "pairs.yaml"]
    assert parsed == as_parsed  # the files changed, not what was read of them
    again = load(root)
    assert next(d for d in again.defects if d.id == "KD-0003").observed_on == ("11.1.3",)
    assert next(d for d in again.defects if d.id == "KD-0013").observed_on == ("10.0.13->11.1.3",)
    assert next(p for p in again.pairs if p.id == "XV-0001").expect[0].observed_on == \
        ("7.2.22->11.1.3",)
    assert observations({**doc, "environment": {"vector_revision": again.revision()}}, again) == []
