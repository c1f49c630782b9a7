"""tox.ini loads: every ``{[section]key}`` it refers to exists (a dangling one
makes tox refuse every environment, the README's two commands included), and
the environments the README and tests/README.md name are defined."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"\{\[([^\]]+)\]([^}:]+)\}")
NAMED = re.compile(r"tox -e ([a-z]+)")


def _tox() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(REPO / "tox.ini")
    return ini


def test_every_reference_resolves() -> None:
    ini = _tox()
    for section in ini.sections():
        for key, value in ini[section].items():
            for ref_section, ref_key in REFERENCE.findall(value):
                where = f"[{section}] {key}: {{[{ref_section}]{ref_key}}}"
                assert ini.has_option(ref_section, ref_key), where


def test_the_environments_the_docs_name_exist() -> None:
    envs = {s.removeprefix("testenv:") for s in _tox().sections() if s.startswith("testenv:")} | {"py"}
    for doc in (REPO / "README.md", REPO / "tests" / "README.md"):
        named = set(NAMED.findall(doc.read_text()))
        assert named and named <= envs, (doc.name, named - envs)
