"""The vector format: version ranges, loading, lint and the safety rules."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import jsonschema
import pytest

from qmpcompat.vectors.lint import lint, schema_problems
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.versions import RangeError, VersionRange


@pytest.mark.parametrize(("spec", "inside", "outside"), [
    (">=10.0,<11.0", [(10, 0, 0), (10, 0, 13), (10, 2, 50)], [(9, 2, 4), (11, 0, 0)]),
    ("==10.0", [(10, 0, 0), (10, 0, 13)], [(10, 1, 0), (9, 0, 0)]),
    ("==10", [(10, 0, 0), (10, 2, 1)], [(11, 0, 0)]),
    ("!=10.0", [(9, 9, 9), (10, 1, 0)], [(10, 0, 2)]),
    ("<8.2", [(7, 2, 22), (8, 1, 99)], [(8, 2, 0)]),
    ("<=8.2", [(8, 2, 0)], [(8, 2, 1)]),
    (">8.2", [(8, 2, 1)], [(8, 2, 0)]),
    ("", [(0, 0, 0), (99, 0, 0)], []),
    ("*", [(7, 2, 0)], []),
])
def test_range_matching(spec: str, inside: list[tuple[int, int, int]],
                        outside: list[tuple[int, int, int]]) -> None:
    rng = VersionRange.parse(spec)
    assert all(v in rng for v in inside)
    assert not any(v in rng for v in outside)


@pytest.mark.parametrize("bad", [">= ten", "10.0", ">=10.0;<11", ">=11,<10", "~=10.0"])
def test_bad_ranges(bad: str) -> None:
    with pytest.raises(RangeError):
        VersionRange.parse(bad)


def test_overlap() -> None:
    assert VersionRange.parse("<10").overlaps(VersionRange.parse("<=9.5"))
    assert not VersionRange.parse("<10").overlaps(VersionRange.parse(">=10"))
    assert not VersionRange.parse("==10.0").overlaps(VersionRange.parse(">=10.1"))
    assert VersionRange.parse("!=10.0").overlaps(VersionRange.parse("==10.1"))


def test_repository_vectors_lint_clean() -> None:
    problems = lint(default_root())
    assert problems == [], "\n".join(map(str, problems))


def _copy_vectors(tmp_path: Path) -> Path:
    root = tmp_path / "vectors"
    shutil.copytree(default_root(), root, ignore=shutil.ignore_patterns("schema"))
    return root


def test_broken_files_are_reported_and_the_rest_load(tmp_path: Path) -> None:
    root = _copy_vectors(tmp_path)
    good = len(load(root).vectors)
    (root / "migrate" / "syntax.yaml").write_text("command: migrate\nvectors:\n  - id: [\n")
    (root / "migrate" / "dupe.yaml").write_text(
        "command: migrate\nvectors:\n"
        "  - id: M-0001\n    description: duplicate id\n    flags: [uri]\n"
        "    arguments: {}\n    expect:\n      - result: accept\n"
        "  - id: M-0999\n    description: bad range\n    flags: [uri]\n"
        "    arguments: {}\n    expect:\n      - versions: '>=11,<10'\n        result: accept\n")
    vs = load(root)
    assert len(vs.vectors) == good - 1  # neither copy of a duplicated id loads
    messages = sorted(str(e) for e in vs.errors)
    assert any(m.startswith("vectors/migrate/syntax.yaml:4: YAML error") for m in messages)
    assert any("dupe.yaml:3: M-0001: duplicate id" in m for m in messages)
    assert any("basic.yaml:3: M-0001: duplicate id (ids are never reused): also at "
               "vectors/migrate/dupe.yaml:3" in m for m in messages)
    assert any("dupe.yaml:14: M-0999: range '>=11,<10' matches no version" in m for m in messages)


def test_lint_rules(tmp_path: Path) -> None:
    root = _copy_vectors(tmp_path)
    (root / "migrate" / "bad.yaml").write_text(
        "command: migrate\nvectors:\n"
        "  - id: M-0998\n    description: overlapping ranges and an unknown flag\n"
        "    flags: [no-such-flag]\n    arguments: {uri: 'tcp:10.0.0.1:4444'}\n"
        "    expect:\n      - versions: '<11'\n        result: accept\n"
        "      - versions: '>=10'\n        result: accept\n"
        "    surprise: 1\n")
    text = "\n".join(str(p) for p in lint(root))
    assert "bad.yaml:3: M-0998: flag 'no-such-flag' is not defined" in text
    assert "bad.yaml:3: M-0998: version ranges <11 and >=10 overlap" in text
    assert "bad.yaml:3: M-0998: unsafe: arguments/uri: tcp host '10.0.0.1' is not loopback" in text
    assert "bad.yaml:3: M-0998: schema: vectors/0: Additional properties" in text
    assert "bad.yaml: not in canonical form" in text


def test_observed_on_rules(tmp_path: Path) -> None:
    """Every expectation says what it rests on; an observed version lies in its range."""
    root = _copy_vectors(tmp_path)
    (root / "migrate" / "claims.yaml").write_text(
        "command: migrate\nvectors:\n"
        "  - id: M-0997\n    description: says nothing about what it rests on\n    flags: [uri]\n"
        "    arguments: {uri: 'unix:{tmpdir}/x'}\n    expect:\n      - result: accept\n"
        "  - id: M-0996\n    description: observed outside its range\n    flags: [uri]\n"
        "    arguments: {uri: 'unix:{tmpdir}/x'}\n    expect:\n      - versions: <10.0\n"
        "        result: accept\n        observed-on: [10.0.2]\n"
        "      - versions: '>=10.0'\n        result: accept\n        observed-on: [10.0.2]\n")
    text = "\n".join(str(p) for p in lint(root))
    assert ("claims.yaml:3: M-0997: the expectation for * says neither where it was observed "
            "(observed-on) nor what it is inferred from (inferred-from)") in text
    assert "M-0996: observed-on 10.0.2 is outside the range <10.0" in text
    assert "M-0996: observed-on 10.0.2 is outside" not in text.split("range <10.0")[1]


class _Lined(dict):  # type: ignore[type-arg]
    """A mapping as load_yaml gives it: with the line it starts at."""

    def __init__(self, line: int, **items: object) -> None:
        super().__init__(items)
        self.line = line


def test_a_content_checked_again_is_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema check of a content met before in the process is taken from then,
    with the lines of the data at hand; a date and its string stay apart."""
    schema = {"type": "object", "properties": {"review-by": {"type": "string"}},
              "additionalProperties": False}
    validated = []
    real = jsonschema.Draft202012Validator.iter_errors

    def counting(self: jsonschema.Draft202012Validator, instance: object) -> object:
        validated.append(instance)
        return real(self, instance)

    monkeypatch.setattr(jsonschema.Draft202012Validator, "iter_errors", counting)
    first = schema_problems(_Lined(3, x=1, **{"review-by": "2027-01-01"}), schema, "a.yaml")
    again = schema_problems(_Lined(7, x=1, **{"review-by": "2027-01-01"}), schema, "b.yaml")
    assert len(validated) == 1
    assert [(p.file, p.line) for p in first] == [("a.yaml", 3)] and [(p.file, p.line) for p in again] \
        == [("b.yaml", 7)] and first[0].message == again[0].message
    dated = schema_problems(_Lined(1, **{"review-by": datetime.date(2027, 1, 1)}), schema, "c.yaml")
    plain = schema_problems(_Lined(1, **{"review-by": "2027-01-01"}), schema, "d.yaml")
    assert len(validated) == 3 and [p.message for p in dated] == [
        "schema: review-by: datetime.date(2027, 1, 1) is not of type 'string'"] and plain == []
    other = {**schema, "additionalProperties": True}
    assert schema_problems(_Lined(7, x=1, **{"review-by": "2027-01-01"}), other, "b.yaml") == []
