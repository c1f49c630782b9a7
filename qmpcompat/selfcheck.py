"""A build's self-check: its modules and firmware come from its own tree.

At provisioning and at the start of every run, each build is started the way
the run starts it (its host dirs hidden, ``qmpcompat.harness.isolation``)
with QEMU's own trace events ``module_load_module`` and ``load_file`` on,
which name every module file it loads and every firmware file it finds:

1. machine ``none``: ``qom-list-types`` (it loads every module that has QOM
   types, as libvirt's probe of a new emulator does), ``query-target`` (the
   target comes from the binary, not from its file name) and the version of
   its QMP greeting;
2. each guest machine type of the test guests the build has (``pc`` and
   ``q35``, versioned as the guests use them), started as a guest starts:
   its BIOS and option ROMs.

Every file named must lie in the build's own tree (``QemuBuild.own_dirs``), and
every module file of its own module dir, loaded or not, must carry the
binary's build stamp (QEMU refuses a module of another build, or aborts). A
build that took one from outside, or died of its environment on the way
(``EnvironmentFault``), is refused (``BuildReachesOutside``); one whose host
dirs could not be hidden, or that lacks a firmware file a guest machine asks
for, runs flagged (``warnings``): every report says so. A binary used in place
(``--qemu PATH``) owns its compiled-in dirs, and a wrapper script decides
itself where its QEMU's files are: their files are listed, not judged.
The result is the build's ``provenance``, shown in every report.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

from qmpcompat import guest
from qmpcompat.errors import EnvironmentFault, ProvisionError, QemuError
from qmpcompat.guest.spec import MACHINES
from qmpcompat.harness import Qemu, QemuOptions, isolation
from qmpcompat.harness.process import private_dir
from qmpcompat.provision.build import QemuBuild
from qmpcompat.provision.elf import is_elf
from qmpcompat.provision.provenance import ISOLATION, Provenance, inside
from qmpcompat.provision.supplement import stamp
from qmpcompat.safety import Policy
from qmpcompat.types import Version, json_list, json_object

TRACE = ("-trace", "module_load_module", "-trace", "load_file")
_MODULE = re.compile(r"module_load_module (?:file )?(/.+?)\s*$", re.MULTILINE)
_TRIED = re.compile(r"(?:failed to initialize module|Failed to open module|Failed to initialize "
                    r"module):? *(/[^\s:]+)")
_FILE = re.compile(r"load_file name (\S+) location (.+?)\s*$", re.MULTILINE)
# What QEMU says of a firmware file it does not find (8.x; 10.x and later; the BIOS).
_LACKING = re.compile(r"Could not open option rom '([^']+)'|rom: file (\S+)\s*: error"
                      r"|could not load PC BIOS '([^']+)'|failed to find romfile \"([^\"]+)\"")
# ld.so's options that take a value (its --argv0 value is the program's argv[0]).
_LOADER_VALUES = ("--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0",
                  "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask")


class BuildReachesOutside(ProvisionError):
    """A build loaded a module or firmware file from outside its own tree
    (``files``), or died of its environment while checked; refused."""

    def __init__(self, build: QemuBuild, files: list[str], detail: str = "") -> None:
        self.build, self.files = build, list(dict.fromkeys(files))
        said = ", ".join(self.files) + (f" ({detail})" if detail and self.files else detail)
        super().__init__(f"QEMU {build.label} ({build.package_text}) reaches outside what was "
                         f"provisioned for it: {said}")
        host = build.provenance.note if build.provenance else ""
        self.hint = (host + "; " if host else "") + (
            "remove the host's QEMU package, or allow the private mount namespace that hides "
            "its dirs (README, 'Which QEMU binaries')")


def isolation_of(build: QemuBuild) -> tuple[str, tuple[str, ...], str]:
    """(a key of ISOLATION, the host's QEMU dirs present here, why hiding them is
    unavailable)."""
    if not build.host_dirs:
        return "in place", (), ""
    present = tuple(isolation.present(build))
    if not present:
        return "nothing to hide", (), ""
    why = isolation.unavailable()
    return ("unavailable", present, why) if why else ("namespace", present, "")


def _after_loader(argv: list[str]) -> str:
    """The program an ld.so command line runs, as argv[0] reaches it."""
    i, argv0 = 1, ""
    while i < len(argv) and argv[i].startswith("--"):
        if argv[i] in _LOADER_VALUES:
            argv0 = argv[i + 1] if argv[i] == "--argv0" and i + 1 < len(argv) else argv0
            i += 2
        else:
            i += 1
    return argv0 or (argv[i] if i < len(argv) else "")


def _program(pid: int, build: QemuBuild) -> tuple[str, str]:
    """For a wrapper (``binary`` is not an ELF): argv[0] of the QEMU it executes,
    and why a fork server cannot serve it ('' when one can)."""
    if build.loader or is_elf(Path(build.binary)):
        return "", ""
    kids = ""
    with contextlib.suppress(OSError):
        kids = " ".join((task / "children").read_text() for task in
                        Path(f"/proc/{pid}/task").iterdir()).strip()
    if kids:
        return "", (f"{build.binary} runs QEMU as a child process instead of executing it, so "
                    "QEMUs forked from a server could not be adopted")
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "", ""
    return (_after_loader(argv) if Path(exe).name.startswith("ld-") else argv[0]), ""


def _module_files(build: QemuBuild) -> tuple[int, list[str]]:
    """The module files of the build's own module dir, and those of them that do
    not carry its binary's build stamp (modules of another build)."""
    moddir = build.env.get("QEMU_MODULE_DIR")
    if not moddir or not is_elf(Path(build.binary)):
        return 0, []
    mods = sorted(Path(moddir).glob("*.so"))
    mark = stamp(Path(build.binary))
    return len(mods), [str(m) for m in mods if mark is not None and mark not in m.read_bytes()]


def _none_machine(build: QemuBuild, timeout: float) -> tuple[QemuBuild, str, int, set[str], str]:
    """Machine ``none``: the build with its own answers recorded (target, version,
    program), QEMU's stderr, the number of QOM types, its machine types, and why
    a fork server cannot serve it ('' when one can)."""
    with Qemu(build, QemuOptions(timeout=timeout, extra_args=TRACE), name="selfcheck") as q:
        types = len(json_list(q.cmd("qom-list-types")))
        arch = str(json_object(q.cmd("query-target")).get("arch") or "")
        machines = {str(json_object(m).get(k)) for m in json_list(q.cmd("query-machines"))
                    for k in ("name", "alias") if json_object(m).get(k)}
        assert q.child is not None
        program, fork = _program(q.child.pid, build)
        version = Version(*q.version)
        text = q.child.stderr_path.read_text(errors="replace")
    found = replace(build, arch=arch, program=program,
                    version=version if version != (0, 0, 0) else build.version)
    return found, text, types, machines, fork


def _guest_machine(build: QemuBuild, family: str, timeout: float, case_dirs: list[str],
                   bare: bool = False) -> str:
    """One machine of ``family`` started as the test guests start it (``bare``: as a
    vector's own machine starts, ``requires.machine``: the build's BIOS, 64 MiB,
    ``-S``); QEMU's stderr. Its case dir, which holds a guest's own firmware and
    pattern, goes into ``case_dirs``: what QEMU loads from there is the test's,
    not the build's."""
    spec = guest.GuestSpec(machine=family)
    tmp = private_dir("qmpv-")
    case_dirs.append(str(tmp))
    try:
        if bare:
            opts = QemuOptions(machine=spec.machine_type(build.version), timeout=timeout,
                               memory="64M")
        else:
            opts = guest.options(spec, build.version, guest.write_files(tmp, guest.new_layout(spec)),
                                 source=True, incoming=False, timeout=timeout)
        opts = replace(opts, extra_args=(*opts.extra_args, "-S", *TRACE))
        try:
            with Qemu(build, opts, "selfcheck", Policy.for_case(tmp)).start(tmp) as q:
                assert q.child is not None
                return q.child.stderr_path.read_text(errors="replace")
        except QemuError as exc:  # a machine that cannot start: its stderr says why
            return exc.stderr_tail + "\n"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def provenance(build: QemuBuild, timeout: float = 10.0) -> QemuBuild:
    """``build`` with its self-check's ``provenance`` (and its own answers: target,
    version, program) recorded; BuildReachesOutside when it took a file from
    outside its own tree or died of its environment; QemuError when it does not
    start or answer at all."""
    mode, host, note = isolation_of(build)
    try:
        found, text, types, machines, fork = _none_machine(build, timeout)
    except EnvironmentFault as exc:
        tried = _TRIED.findall(exc.stderr_tail)
        refused = replace(build, provenance=Provenance(mode, host, note))
        raise BuildReachesOutside(refused, tried, str(exc).splitlines()[0]) from exc
    checked = [m for m in MACHINES
               if guest.GuestSpec(machine=m).machine_type(found.version) in machines]
    case_dirs: list[str] = []
    for family in checked:
        text += _guest_machine(found, family, timeout, case_dirs)
    if checked:
        text += _guest_machine(found, checked[0], timeout, case_dirs, bare=True)
    modules = list(dict.fromkeys(_MODULE.findall(text) + _TRIED.findall(text)))
    firmware = list(dict.fromkeys(f"{name}={path}" for name, path in _FILE.findall(text)
                                  if not inside(path, tuple(case_dirs))))
    lacking = sorted({n for groups in _LACKING.findall(text) for n in groups if n})
    judged = mode != "in place" and is_elf(Path(build.binary))  # a wrapper's tree is its own say
    files, unstamped = _module_files(build) if judged else (0, [])  # counted only when held to it
    outside = [] if not judged else [
        p for p in modules + [f.split("=", 1)[1] for f in firmware]
        if not inside(p, found.own_dirs())] + unstamped
    prov = Provenance(mode, host, note, tuple(modules), tuple(firmware), tuple(outside),
                      tuple(lacking), types, tuple(checked), bool(firmware) or not checked, fork,
                      files)
    checked_build = replace(found, provenance=prov)
    if outside:
        raise BuildReachesOutside(checked_build, outside)
    return checked_build


def warnings(build: QemuBuild) -> list[str]:
    """What every report must say of a checked build that runs: host dirs that
    could not be hidden, firmware a guest machine lacks, no trace to check by."""
    prov = build.provenance
    if prov is None:
        return []
    out = []
    name = f"QEMU {build.label} ({build.package_text})"
    if prov.isolation == "unavailable":
        out.append(f"{name}: the host's QEMU dirs {', '.join(prov.host_dirs)} are "
                   f"{ISOLATION['unavailable']}: {prov.note}; its self-check found nothing "
                   "taken from outside")
    if prov.lacking:
        out.append(f"{name}: its guest machines ({', '.join(prov.machines)}) lack firmware "
                   f"{', '.join(prov.lacking)}")
    if not prov.traced:
        out.append(f"{name}: it has no trace events to name the files it loads; its "
                   "firmware was not checked")
    return out
