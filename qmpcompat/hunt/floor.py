"""The floor a hunt is measured against: how long QEMU alone takes to start,
finish the QMP handshake and quit, with no harness around it."""

from __future__ import annotations

import socket
import time

from qmpcompat.harness.process import Child, private_dir
from qmpcompat.provision import QemuBuild
from qmpcompat.safety import Policy, check_options, qemu_opt


def start_once(build: QemuBuild, timeout: float = 10.0) -> float:
    """Seconds for one QEMU (``-M none``) to start, greet, accept qmp_capabilities
    and quit, over a raw unix socket."""
    workdir = private_dir("qmpf-")
    path = workdir / "f.qmp"
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        server.settimeout(timeout)
        options = ["-M", "none", "-nodefaults", "-display", "none",
                   "-qmp", f"unix:{qemu_opt(str(path))}"]
        check_options(options, Policy.for_case(workdir))
        child = Child([*build.command(), *options], build.environ(), workdir / "f.stderr")
        try:
            conn, _ = server.accept()
            with conn, conn.makefile("rwb") as qmp:
                conn.settimeout(timeout)
                qmp.readline()
                for command in (b"qmp_capabilities", b"quit"):
                    qmp.write(b'{"execute": "%s"}\n' % command)
                    qmp.flush()
                    qmp.readline()
            child.wait(timeout)
        finally:
            child.kill()
    elapsed = time.monotonic() - start
    for leftover in workdir.iterdir():
        leftover.unlink()
    workdir.rmdir()
    return elapsed

