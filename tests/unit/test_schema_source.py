"""The QAPI source parser on the real qapi/ trees of Debian's qemu source packages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qmpcompat.cli import main
from qmpcompat.errors import SchemaError
from qmpcompat.schema.differ.compare import load
from qmpcompat.schema.model.query import SchemaIndex, schema_has
from qmpcompat.schema.sources.debsrc import debian_qapi_dir
from qmpcompat.schema.sources.qapi_convert import DEFAULT_DEFINES, to_entries
from qmpcompat.schema.sources.qapi_source import ROOT_FILE, Expr, dir_reader, parse_schema, parse_text
from qmpcompat.schema.sources.resolve import load_input

VERSIONS = ["7.2", "10.0"]


@pytest.fixture(scope="module", params=VERSIONS)
def qapi_dir(request: pytest.FixtureRequest) -> Path:
    return debian_qapi_dir(request.param)[0]


def test_whole_schema_parses_and_follows_includes(qapi_dir: Path) -> None:
    exprs = parse_schema(ROOT_FILE, dir_reader(qapi_dir))
    files = {e.file for e in exprs}
    assert "migration.json" in files and "sockets.json" in files
    names = {next(iter(e.data.values())) for e in exprs}
    assert {"migrate", "migrate-incoming", "MigrationCapability"} <= names


def test_definitions_keep_their_line(qapi_dir: Path) -> None:
    exprs = parse_schema(ROOT_FILE, dir_reader(qapi_dir))
    migrate = next(e for e in exprs if e.data.get("command") == "migrate")
    lines = (qapi_dir / migrate.file).read_text().splitlines()
    assert lines[migrate.line - 1].startswith("{ 'command': 'migrate'")


def test_syntax_error_names_file_and_line(qapi_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "qapi"
    shutil.copytree(qapi_dir, copy)
    text = (copy / "migration.json").read_text().splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("{ 'command': 'migrate'"))
    text[at] = text[at].replace("'migrate'", "'migrate' 'oops'")
    (copy / "migration.json").write_text("\n".join(text) + "\n")
    with pytest.raises(SchemaError) as err:
        load_input(str(copy))
    assert err.value.source.endswith("migration.json") and err.value.line == at + 1
    assert f"migration.json:{at + 1}:" in str(err.value)


@pytest.mark.parametrize(("text", "line"), [
    ("{ 'a': 'b' }\n\n{ 'c': 'unterminated }\n", 3),
    ("# comment\n{ 'a': [ 'b', ] }\n", 2),
    ("{ 'a': 1 }\n", 1),
    ("{ 'a': 'b', 'a': 'c' }\n", 1),
    ("{ 'a': 'b' }\n  'stray'\n", 2),
])
def test_small_syntax_errors(text: str, line: int) -> None:
    with pytest.raises(SchemaError) as err:
        parse_text(text, "x.json")
    assert err.value.line == line and err.value.source == "x.json"


def test_comments_and_doc_blocks_are_skipped() -> None:
    text = "##\n# @Foo:\n# doc { 'not': 'code' }\n##\n{ 'enum': 'Foo', # trailing\n 'data': ['a'] }\n"
    [(expr, line)] = parse_text(text, "x.json")
    assert expr == {"enum": "Foo", "data": ["a"]} and line == 5


def test_conditionals_follow_the_defines(qapi_dir: Path) -> None:
    exprs = parse_schema(ROOT_FILE, dir_reader(qapi_dir))
    with_linux = SchemaIndex(to_entries(exprs, DEFAULT_DEFINES))
    without = SchemaIndex(to_entries(exprs, DEFAULT_DEFINES - {"CONFIG_LINUX"}))
    query = "migrate/arg-type/channels/addr/+socket/+unix/abstract"
    if qapi_dir.parent.name.startswith("1_7."):
        query = "chardev-add/arg-type/backend/+socket/data/addr/+unix/data/abstract"
    assert schema_has(with_linux, query)
    assert not schema_has(without, query)


def test_git_ref_input(tmp_path: Path) -> None:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "qemu"
    (repo / "qapi").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    for version in VERSIONS:
        shutil.rmtree(repo / "qapi")
        shutil.copytree(debian_qapi_dir(version)[0], repo / "qapi")
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", version], check=True)
        subprocess.run([*git, "tag", f"v{version}"], check=True)
    old = load_input(f"{repo}@v7.2")
    new = load_input(f"{repo}@v10.0")
    assert not schema_has(SchemaIndex(old.entries), "migrate-incoming/arg-type/channels")
    assert schema_has(SchemaIndex(new.entries), "migrate-incoming/arg-type/channels")
    assert load(old).model == load(load_input("debian:7.2")).model


def test_unknown_inputs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError):
        load_input(str(tmp_path / "nothing-here"))
    with pytest.raises(SchemaError):
        load_input(f"{tmp_path}@HEAD")
    with pytest.raises(SchemaError):
        load_input("debian:1.0")


def test_simple_unions_of_old_schemas() -> None:
    text = """
{ 'struct': 'A', 'data': { 'x': 'int' } }
{ 'union': 'U', 'data': { 'a': 'A', 'b': 'str' } }
{ 'command': 'c', 'data': { 'u': 'U' } }
"""
    exprs = [Expr(data, "x.json", line) for data, line in parse_text(text, "x.json")]
    index = SchemaIndex(to_entries(exprs))
    assert schema_has(index, "c/arg-type/u/type/^a")
    assert schema_has(index, "c/arg-type/u/+a/data/x/!int")
    assert schema_has(index, "c/arg-type/u/+b/data/!string")


USE_E = "{ 'command': 'c', 'data': { 'e': 'E' } }"
USE_U = "{ 'command': 'c', 'data': { 'u': 'U' } }"


@pytest.mark.parametrize("lines, why", [
    (["{ 'enum': 'E', 'data': [ { 'if': 'CONFIG_LINUX' } ] }", USE_E],
     "an enum value must be a name"),
    (["{ 'enum': 'E', 'data': [ 'a' ], 'features': 'f' }", USE_E], "'features' must be a list"),
    (["{ 'enum': 'E', 'data': [ 'a' ] }",
      "{ 'union': 'U', 'base': { 't': 'E' }, 'discriminator': 't', 'data': [ 'a' ] }", USE_U],
     "a union's 'data' must be an object"),
    (["{ 'union': 'U', 'data': 'A' }", USE_U], "a union's 'data' must be an object"),
])
def test_malformed_definitions_are_errors_with_their_line(lines: list[str], why: str) -> None:
    exprs = [Expr(data, "x.json", line) for data, line
             in parse_text("\n".join(lines), "x.json")]
    with pytest.raises(SchemaError, match=why) as err:
        to_entries(exprs)
    assert (err.value.source, err.value.line) == ("x.json", len(lines) - 1)


def test_cli_define_and_undefine() -> None:

    query = "migrate/arg-type/channels/addr/+socket/+unix/abstract"
    assert main(["query", "debian:10.0", query]) == 0
    assert main(["query", "debian:10.0", "--undefine", "CONFIG_LINUX", query]) == 1
    assert main(["query", "debian:10.0", "--define", "CONFIG_QPL",
                 "migrate-set-parameters/arg-type/multifd-compression/^qpl"]) == 0
    assert main(["query", "debian:10.0",
                 "migrate-set-parameters/arg-type/multifd-compression/^qpl"]) == 1
