"""Running the conformance suite in a subprocess, as a user would, and checking
that it leaves no QEMU process and no temp dir behind; a run several tests read
is made once per session (``shared_run``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import zygote
from helpers.shared import Shared
from qmpcompat.types import json_object
from qmpcompat.vectors.notes import NOTES_FILE, NOTES_SCHEMA, used_ids
from qmpcompat.vectors.yamlfile import dump_canonical, load_yaml

REPO = Path(__file__).resolve().parents[2]
SUITES = "bookworm,sid"  # the oldest and the newest line of the default set
# The suites these tests exercise the machinery with (the derived and schema
# suites have tests of their own).
MACHINERY = ("suites/test_vectors.py", "suites/test_binaries.py", "suites/test_vector_files.py")
# pytest as these runs start it: without Hypothesis's plugin, which the suite has no
# use for and whose import costs each pytest process (and each of its xdist workers)
# about 1 s of CPU. (The CI template tests and most of tests/e2e/test_plugin.py run
# pytest with every installed plugin, as a user does.)
PYTEST = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


class SuiteRun:
    """``pytest`` on (parts of) suites/ in its own session, with a private, short TMPDIR (QEMU's
    unix sockets go there) so that what it leaves behind can be found; forked
    from this process's zygote (``helpers.zygote``) unless ``plain``."""

    def __init__(self, tmp_path: Path, *args: str, vectors: Path | None = None,
                 suites: str = SUITES, env: dict[str, str] | None = None,
                 paths: tuple[str, ...] = MACHINERY, plain: bool = False) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.reports = tmp_path / "reports"
        self.tmpdir = Path(tempfile.mkdtemp(prefix="qs-"))
        self.log = tmp_path / "pytest.log"
        cmd = [*PYTEST, *paths, "-rfEx",
               "--qmpcompat-suites", suites, "--qmpcompat-reports", str(self.reports),
               "--junitxml", str(self.reports / "junit.xml"), *args]
        if vectors:
            cmd += ["--qmpcompat-vectors", str(vectors)]
        full_env = {**os.environ, "TMPDIR": str(self.tmpdir), **(env or {})}
        full_env.pop("QMPCOMPAT_QEMU", None)
        with open(self.log, "w") as log:
            # SIGINT back to its default: a run started from a background job (which
            # inherits SIGINT ignored) must still take Ctrl-C as a terminal's run does
            self.proc = zygote.popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True, sigint_default=True, plain=plain)

    def wait(self, timeout: float = 600) -> int:
        return self.proc.wait(timeout)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def results(self) -> dict[str, Any]:
        return json.loads((self.reports / "results.json").read_text())

    def assert_clean(self, timeout: float = 10.0) -> None:
        """No QEMU (or anything else) of the run still runs, no temp dir is left;
        the run's reapers finish their work within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = [p.name for p in self.tmpdir.iterdir() if p.name.startswith("qmp")]
            procs = processes_under(self.tmpdir)
            if not left and not procs:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the run left behind dirs {left} and processes {procs}")
            time.sleep(0.1)
        shutil.rmtree(self.tmpdir)


def run_suite(tmp_path: Path, *args: str, vectors: Path | None = None, suites: str = SUITES,
              env: dict[str, str] | None = None,
              paths: tuple[str, ...] = MACHINERY) -> tuple[int, str, dict[str, Any]]:
    """Run ``pytest suites`` on the builds of ``suites`` to its end; check it left
    nothing behind; return its exit status, its output and its results.json."""
    run = SuiteRun(tmp_path, *args, vectors=vectors, suites=suites, env=env, paths=paths)
    rc = run.wait()
    run.assert_clean()
    return rc, run.output, run.results()


def processes_under(path: Path) -> list[str]:
    """Live processes whose command line names ``path`` (the run's reapers included)
    or that work inside it (a QEMU forked from a fork server names its QMP socket
    relative to its own dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            try:
                cwd = os.readlink(entry / "cwd") + "/"
            except OSError:
                cwd = ""
            inside = str(path).encode() in cmdline or cwd.startswith(f"{path}/")
            if inside and state != "Z":
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:120])
    return found


def outcomes(results: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["vector"], r["qemu"]): r["outcome"] for r in results["results"]}


def basic_vectors(tmp_path: Path) -> Path:
    """A copy of the vector set cut down to the two basic.yaml files: enough for
    tests of the machinery, quick to run. Tests may edit the copy."""
    src = REPO / "vectors"
    dst = tmp_path / "vectors"
    dst.mkdir(parents=True)
    for name in ("flags.yaml", "vector-file.schema.json", "known-defects.schema.json"):
        shutil.copy(src / name, dst / name)
    for command in ("migrate", "migrate-incoming"):
        (dst / command).mkdir()
        shutil.copy(src / command / "basic.yaml", dst / command / "basic.yaml")
    return copy_notes(dst)


def copy_notes(dst: Path) -> Path:
    """Give a cut-down copy of the vector set the notes (vectors/notes.yaml) its
    files name, and only those (lint refuses a note nothing names)."""
    shutil.copy(REPO / "vectors" / NOTES_SCHEMA, dst / NOTES_SCHEMA)
    notes = dict(json_object(load_yaml(REPO / "vectors" / NOTES_FILE)))  # a copy: the parse is shared
    used = {i for f in dst.rglob("*.yaml") if f.name != NOTES_FILE
            for i in used_ids(load_yaml(f))}
    notes["notes"] = {k: v for k, v in notes["notes"].items() if k in used}
    (dst / NOTES_FILE).write_text(dump_canonical(notes))
    return dst


@dataclass(frozen=True)
class Ran:
    """A finished run of the suite: what ``run_suite`` returns, and its directory
    (``reports/`` and ``pytest.log`` below it)."""

    rc: int
    output: str
    results: dict[str, Any]
    path: Path


def shared_vectors(shared: Shared) -> Path:
    """``basic_vectors``, once per session, for the runs tests share (read only)."""
    return shared.once("basic-vectors", basic_vectors) / "vectors"


def shared_run(shared: Shared, suites: str = SUITES, *args: str) -> Ran:
    """``run_suite`` of the shared basic vectors on the builds of ``suites`` with
    ``args``, made once per session for every test that reads the same run
    (under umask 022, as in a user's shell). Tests must not change it."""

    def make(path: Path) -> None:
        old = os.umask(0o022)
        try:
            rc, _out, _doc = run_suite(path, *args, vectors=shared_vectors(shared), suites=suites)
        finally:
            os.umask(old)
        (path / "rc").write_text(str(rc))

    path = shared.once(f"run-{suites}-{' '.join(args)}", make)
    return Ran(int((path / "rc").read_text()), (path / "pytest.log").read_text(),
               json.loads((path / "reports" / "results.json").read_text()), path)


def consumer_vectors(tmp_path: Path, edit: tuple[str, str] | None = None,
                     profile: str = "libvirt-11.3.0.yaml", pid: str = "CP-0002") -> Path:
    """The basic vector set with one consumer profile (``edit`` applied: old, new)
    and the recordings of the real consumer it names."""
    vectors = basic_vectors(tmp_path)
    for schema in ("consumer-profile.schema.json", "consumer-wire.schema.json"):
        shutil.copy(REPO / "vectors" / schema, vectors)
    (vectors / "consumers").mkdir()
    shutil.copytree(REPO / "vectors/consumers/wire" / pid, vectors / "consumers/wire" / pid)
    text = (REPO / "vectors" / "consumers" / profile).read_text()
    if edit:
        assert edit[0] in text
        text = text.replace(edit[0], edit[1], 1)
    (vectors / "consumers" / profile).write_text(text)
    return vectors
