"""Provisioned builds stay themselves on a host that has another QEMU installed.

The host-package case is reproduced in a private namespace (``host_package``):
another build's modules in ``/usr/lib/x86_64-linux-gnu/qemu`` and its firmware
in ``/usr/share/qemu``, where QEMU's compiled-in paths point. Before builds
hid those dirs, the newest Debian build aborted on ``qom-list-types`` there
("Only modules from the same build can be loaded") and took ROMs its own tree
lacks from the host.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.host_package import LIBDIR, SHARE, run_on_host_with_qemu

from qmpcompat.harness.isolation import environment_fault, present
from qmpcompat.provision import QemuBuild
from qmpcompat.provision.provenance import COMMON_DIRS, compiled_dirs
from qmpcompat.selfcheck import BuildReachesOutside, provenance

_PRELUDE = """
import json, os, sys, time
from dataclasses import replace
from qmpcompat.provision.build import QemuBuild
BUILDS = [QemuBuild.from_json(b) for b in json.loads(os.environ["QMPCOMPAT_TEST_BUILDS"])]
out = {}
"""


def _modules(build: QemuBuild) -> list[Path]:
    return sorted(Path(build.env["QEMU_MODULE_DIR"]).glob("*.so"))


def _firmware(build: QemuBuild) -> list[Path]:
    share = next(Path(d) for d in build.data_dirs if d.endswith("share/qemu"))
    seabios = next(Path(d) for d in build.data_dirs if d.endswith("share/seabios"))
    return [share / "kvmvapic.bin", share / "multiboot_dma.bin", seabios / "bios-256k.bin"]


def _on_host(tmp: Path, foreign: QemuBuild, builds: list[QemuBuild], code: str) -> dict:  # type: ignore[type-arg]
    """Run ``code`` where the host's QEMU dirs hold ``foreign``'s modules and firmware."""
    os.environ["QMPCOMPAT_TEST_BUILDS"] = json.dumps([b.to_json() for b in builds])
    try:
        return run_on_host_with_qemu(tmp, _modules(foreign), _firmware(foreign), _PRELUDE + code)
    finally:
        del os.environ["QMPCOMPAT_TEST_BUILDS"]


def test_host_dirs_are_hidden_and_every_module_is_its_own(oldest: QemuBuild, newest: QemuBuild,
                                                          tmp_path: Path) -> None:
    got = _on_host(tmp_path, oldest, [newest], """
from qmpcompat.harness import Qemu, QemuOptions, isolation
from qmpcompat.harness.pool import QemuPool
from qmpcompat.selfcheck import provenance
b = BUILDS[0]
out["host_modules"] = sorted(os.listdir("/usr/lib/x86_64-linux-gnu/qemu"))
out["present"] = isolation.present(b)
with Qemu(b) as q:
    out["types"] = len(q.cmd("qom-list-types"))
    out["hidden"] = open(f"/proc/{q.child.pid}/mountinfo").read().count("qmpcompat-hidden")
out["prov"] = provenance(b).provenance.to_json()
pool = QemuPool(b, QemuOptions(), fork=True)
q = pool.take()
out["forked_types"], out["forked"] = len(q.cmd("qom-list-types")), pool.forked
out["exec_reason"] = pool.exec_reason
pool.discard(q)
pool.close()
print(json.dumps(out))
""")
    assert "ui-opengl.so" in got["host_modules"]  # another build's modules are there
    assert got["present"] == [f"{LIBDIR}/qemu", f"{SHARE}/qemu"]
    assert got["types"] > 600 and got["hidden"] == 2
    prov = got["prov"]
    assert prov["isolation"] == "namespace" and prov["outside"] == []
    own = newest.env["QEMU_MODULE_DIR"]
    assert prov["modules"] and all(m.startswith(own + "/") for m in prov["modules"])
    names = {f.split("=")[0]: f.split("=", 1)[1] for f in prov["firmware"]}
    assert {"bios-256k.bin", "kvmvapic.bin"} <= set(names)  # a bare pc machine's; the guests'
    assert "multiboot_dma.bin" not in names  # the test guest boots no kernel
    assert all(p.startswith(tuple(newest.data_dirs)) for p in names.values()), names
    # QEMUs forked from a fork server share its namespace: the same types, forked.
    assert got["forked_types"] == got["types"] and got["forked"] >= 1, got["exec_reason"]


def test_a_rom_the_tree_lacks_is_not_taken_from_the_host(oldest: QemuBuild, newest: QemuBuild,
                                                         tmp_path: Path) -> None:
    # The newest build, its firmware dir without kvmvapic.bin (links to the rest).
    share = next(Path(d) for d in newest.data_dirs if d.endswith("share/qemu"))
    lacking = tmp_path / "share-lacking"
    lacking.mkdir()
    for path in share.iterdir():
        if path.name != "kvmvapic.bin":
            (lacking / path.name).symlink_to(path)
    build = replace(newest, data_dirs=tuple(str(lacking) if d == str(share) else d
                                            for d in newest.data_dirs))
    got = _on_host(tmp_path, oldest, [build], """
from qmpcompat.selfcheck import provenance, warnings
checked = provenance(BUILDS[0])
out["prov"], out["warnings"] = checked.provenance.to_json(), warnings(checked)
print(json.dumps(out))
""")
    prov = got["prov"]
    assert prov["lacking"] == ["kvmvapic.bin"] and prov["outside"] == []
    assert not any(f.startswith("kvmvapic.bin=") for f in prov["firmware"])
    assert any("lack firmware kvmvapic.bin" in w for w in got["warnings"])


def test_without_a_namespace_a_build_that_reaches_out_is_refused(
        oldest: QemuBuild, newest: QemuBuild, tmp_path: Path) -> None:
    got = _on_host(tmp_path, oldest, [newest, oldest], """
from qmpcompat.harness import isolation
from qmpcompat.hunt.cases import is_failure
from qmpcompat.selfcheck import BuildReachesOutside, provenance, warnings
from qmpcompat.types import Version
from qmpcompat.vectors.match import judge_expectation
from qmpcompat.vectors.model import Expectation
from qmpcompat.vectors.transcript import run_fresh
from qmpcompat.vectors.versions import VersionRange
isolation.unavailable = lambda: "simulated: no user namespaces here"
newest, oldest = BUILDS
try:
    provenance(newest)
    out["refused"] = None
except BuildReachesOutside as exc:
    out["refused"], out["files"] = str(exc), exc.files
checked = provenance(oldest)  # its own tree has every module it asks for
out["oldest"], out["warnings"] = checked.provenance.to_json(), warnings(checked)
steps = [{"execute": "qom-list-types", "arguments": {}},
         {"execute": "migrate-incoming", "arguments": {"uri": "unix:{tmpdir}/in.sock"}}]
obs = run_fresh(steps, newest, incoming=True)
out["obs"], out["environment"] = obs.to_json(), obs.environment
out["hunt_finding"] = is_failure(steps, obs)
exp = Expectation(VersionRange.parse("*"), "accept")
out["outcome"] = str(judge_expectation(exp, obs, [], Version(*newest.version)).outcome)
print(json.dumps(out))
""")
    assert got["refused"] and "reaches outside what was provisioned" in got["refused"]
    assert got["files"] and all(f.startswith(f"{LIBDIR}/qemu/") for f in got["files"])
    assert "simulated: no user namespaces here" in got["refused"]
    assert got["oldest"]["isolation"] == "unavailable" and got["oldest"]["outside"] == []
    assert any("NOT hidden" in w for w in got["warnings"])
    # A crash of the environment's making: an environment error, not a QEMU crash.
    assert got["obs"]["result"] == "error" and got["environment"], got["obs"]
    assert "module" in got["obs"]["detail"]
    assert got["hunt_finding"] is False
    assert got["outcome"] == "error"


def test_an_isolated_qemu_dies_with_its_run(oldest: QemuBuild, newest: QemuBuild,
                                            tmp_path: Path) -> None:
    got = _on_host(tmp_path, oldest, [newest], f"""
import signal, subprocess
run = subprocess.Popen([sys.executable, "-c", '''
import json, os, sys, time
from qmpcompat.provision.build import QemuBuild
from qmpcompat.harness import Qemu
b = QemuBuild.from_json(json.loads(os.environ["QMPCOMPAT_TEST_BUILDS"])[0])
q = Qemu(b).start()
open({str(tmp_path / "pid")!r}, "w").write(str(q.child.pid))
time.sleep(120)
'''])
pidfile = {str(tmp_path / "pid")!r}
for _ in range(300):
    if os.path.exists(pidfile) and open(pidfile).read():
        break
    time.sleep(0.1)
pid = int(open(pidfile).read())
out["hidden"] = open(f"/proc/{{pid}}/mountinfo").read().count("qmpcompat-hidden")
run.send_signal(signal.SIGKILL)
run.wait()
def alive():
    try:
        return open(f"/proc/{{pid}}/stat").read().split()[2] != "Z"
    except OSError:
        return False
for _ in range(100):
    if not alive():
        break
    time.sleep(0.05)
out["alive"] = alive()
print(json.dumps(out))
""")
    assert got["hidden"] == 2
    assert got["alive"] is False


def test_a_module_of_another_build_in_its_own_dir_is_refused(oldest: QemuBuild, newest: QemuBuild,
                                                             tmp_path: Path) -> None:
    # Its own modules, and one of the oldest build's that no QMP command loads.
    moddir = tmp_path / "modules"
    moddir.mkdir()
    for module in Path(newest.env["QEMU_MODULE_DIR"]).glob("*.so"):
        (moddir / module.name).symlink_to(module)
    (moddir / "audio-dbus.so").symlink_to(Path(oldest.env["QEMU_MODULE_DIR"]) / "audio-dbus.so")
    build = replace(newest, env={**newest.env, "QEMU_MODULE_DIR": str(moddir)})
    with pytest.raises(BuildReachesOutside) as info:
        provenance(build)
    assert info.value.files == [str(moddir / "audio-dbus.so")]
    (moddir / "audio-dbus.so").unlink()
    checked = provenance(build).provenance
    assert checked is not None and checked.module_files == len(list(moddir.iterdir()))


def test_compiled_dirs_come_from_the_binary(tmp_path: Path, newest: QemuBuild) -> None:
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_bytes(b"\x7fELF\0junk\0/opt/vendor/lib/qemu\0/opt/vendor/share/seabios\0"
                     b"/var/lib/vendor/qemu/%s\0/opt/vendor/etc/qemu.conf\0")
    found = compiled_dirs(fake)
    assert {"/opt/vendor/lib/qemu", "/opt/vendor/share/seabios", "/var/lib/vendor/qemu"} <= set(found)
    assert "/opt/vendor/etc/qemu.conf" not in found and set(COMMON_DIRS) <= set(found)
    assert {f"{LIBDIR}/qemu", f"{SHARE}/qemu", "/var/run/qemu"} <= set(newest.host_dirs)


def test_a_build_own_dirs_are_never_hidden(tmp_path: Path, newest: QemuBuild) -> None:
    (tmp_path / "qemu").mkdir()
    (tmp_path / "other" / "qemu").mkdir(parents=True)
    build = replace(newest, host_dirs=(str(tmp_path / "qemu"), str(tmp_path / "other" / "qemu"),
                                       str(Path(newest.binary).parents[2]), "/nonexistent/qemu"),
                    data_dirs=(*newest.data_dirs, str(tmp_path / "qemu" / "share")))
    assert present(build) == [str(tmp_path / "other" / "qemu")]


def test_environment_causes_are_told_apart_from_crashes(newest: QemuBuild) -> None:
    said = {
        "qemu-system-x86_64: failed to initialize module: /usr/lib/x86_64-linux-gnu/qemu/ui-opengl.so\n"
        "Only modules from the same build can be loaded.\n": "it loaded a module of another build",
        "qemu: could not load PC BIOS 'bios-256k.bin'\n": "firmware bios-256k.bin not found",
        "util/module.c:165: module_load_dso: Assertion `QTAILQ_EMPTY(&dso_init_list)' failed.":
            "an assertion in its module loader",
        f"Failed to open module: {LIBDIR}/qemu/x.so: cannot open":
            f"a module it could not load: {LIBDIR}/qemu/x.so (outside the build's own tree)",
    }
    for stderr, cause in said.items():
        assert environment_fault(newest, stderr) == cause, stderr
    assert environment_fault(newest, "qemu-system-x86_64: ../migration/ram.c:42: assertion") is None
