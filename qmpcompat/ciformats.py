"""Findings in the formats CI systems show where people look: GitHub Actions
workflow commands (annotations), GitLab code quality reports and SARIF 2.1.0
(code scanning). The schema differ and the behaviour changes both convert
their findings to :class:`CiFinding` and write them through here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from qmpcompat.escape import visible, visible_lines, workflow_data, workflow_property
from qmpcompat.types import JSONObject

FORMATS = ("github", "gitlab", "sarif")
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
# qmpcompat level -> GitHub command, GitLab severity, SARIF level
_GITHUB = {"breaking": "error", "warning": "warning", "info": "notice"}
_GITLAB = {"breaking": "critical", "warning": "minor", "info": "info"}
_SARIF = {"breaking": "error", "warning": "warning", "info": "note"}


@dataclass(frozen=True)
class CiFinding:
    """One finding, as every CI format needs it: ``path`` and ``line`` point at
    the file (relative to the repository) that holds what changed, when known."""

    rule: str
    level: str  # info, warning, breaking
    title: str
    message: str
    fingerprint: str
    path: str = ""
    line: int | None = None


def github(findings: Iterable[CiFinding]) -> str:
    """GitHub Actions workflow commands, one per finding:
    ``::error file=F,line=L,title=T::message`` (``notice`` for info)."""
    lines = []
    for f in findings:
        props = [f"file={workflow_property(f.path)}"] if f.path else []
        if f.path and f.line:
            props.append(f"line={f.line}")
        props.append(f"title={workflow_property(f.title)}")
        lines.append(f"::{_GITHUB[f.level]} {','.join(props)}::{workflow_data(f.message)}")
    return "".join(line + "\n" for line in lines)


def gitlab(findings: Iterable[CiFinding], default_path: str) -> str:
    """A GitLab code quality report: a JSON list of issues with description,
    check_name, fingerprint, severity and location (path, lines.begin);
    ``default_path`` stands where a finding has no file."""
    issues = [{"description": visible_lines(f"{f.title}: {f.message}"), "check_name": visible(f.rule),
               "fingerprint": f.fingerprint, "severity": _GITLAB[f.level],
               "location": {"path": visible(f.path or default_path), "lines": {"begin": f.line or 1}}}
              for f in findings]
    return json.dumps(issues, indent=1) + "\n"


def sarif(findings: Iterable[CiFinding], rules: Mapping[str, tuple[str, str]], version: str,
          default_path: str) -> str:
    """A SARIF 2.1.0 log with one run of qmpcompat: ``rules`` (id -> level,
    explanation) become the driver's rules, each finding a result with its
    location and a partial fingerprint."""
    found = list(findings)
    used = sorted({f.rule for f in found})
    index = {rid: i for i, rid in enumerate(used)}
    driver: JSONObject = {
        "name": "qmpcompat", "version": version, "semanticVersion": version,
        "rules": [{"id": rid, "shortDescription": {"text": rules[rid][1]},
                   "defaultConfiguration": {"level": _SARIF[rules[rid][0]]}} for rid in used]}
    results = []
    for f in found:
        region = {"region": {"startLine": f.line}} if f.line else {}
        results.append({
            "ruleId": f.rule, "ruleIndex": index[f.rule], "level": _SARIF[f.level],
            "message": {"text": visible_lines(f"{f.title}: {f.message}")},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": visible(f.path or default_path)},
                                                **region}}],
            "partialFingerprints": {"qmpcompatFingerprint/v1": f.fingerprint}})
    log = {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0",
           "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(log, indent=1) + "\n"


def render(fmt: str, findings: Iterable[CiFinding], rules: Mapping[str, tuple[str, str]],
           version: str, default_path: str) -> str:
    """``findings`` in CI format ``fmt`` (github, gitlab, sarif)."""
    if fmt == "github":
        return github(findings)
    if fmt == "gitlab":
        return gitlab(findings, default_path)
    return sarif(findings, rules, version, default_path)
