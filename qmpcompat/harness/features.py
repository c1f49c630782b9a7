"""What a build can do, probed cheaply from the build itself (never from its version).

Before a run each build is asked, in a few QEMU starts of ``-M none``:

- ``rdma``: is RDMA migration compiled in? ``migrate-incoming`` with an
  ``rdma:`` uri on loopback answers "unknown migration protocol" when it is not
  (a build that has it fails otherwise, e.g. for want of an RDMA device);
- ``vsock``: is AF_VSOCK compiled in? a ``vsock:`` uri answers "socket family
  AF_VSOCK unsupported" when it is not;
- ``multifd``: does the build take the ``multifd`` migration capability
  (``migrate-set-capabilities``)?
- ``cpr-reboot``, ``cpr-transfer``, ``cpr-exec``: does it take that migration
  mode (``migrate-set-parameters`` ``mode``)? A build without the mode (an older
  release; the mode's code left out) refuses it;
- ``machine:NAME``: each machine type (and alias) ``query-machines`` lists.

unix, tcp, fd, exec and file migration are compiled into every build (QEMU's
``migration/`` code has no configure switch for them); which of them a release
has is a matter of its version, which the vectors' ranges say. Vectors declare
what they need (``requires.features``, and ``requires.machine``); a build that
lacks a need skips the vector with the reason.
"""

from __future__ import annotations

from dataclasses import replace

from qmpcompat.harness.qemu import Qemu, QemuOptions
from qmpcompat.provision.build import QemuBuild
from qmpcompat.types import JSONObject, json_list, json_object

# feature -> (uri probed with migrate-incoming, what QEMU says when it lacks it)
TRANSPORT_PROBES: dict[str, tuple[str, str]] = {
    "rdma": ("rdma:127.0.0.1:0", "unknown migration protocol"),
    "vsock": ("vsock:1:0", "AF_VSOCK unsupported"),
}
# feature -> (command, arguments that turn it on, arguments that turn it off again)
SETTING_PROBES: dict[str, tuple[str, JSONObject, JSONObject]] = {
    "multifd": ("migrate-set-capabilities",
                {"capabilities": [{"capability": "multifd", "state": True}]},
                {"capabilities": [{"capability": "multifd", "state": False}]}),
    **{mode: ("migrate-set-parameters", {"mode": mode}, {"mode": "normal"})
       for mode in ("cpr-reboot", "cpr-transfer", "cpr-exec")},
}
FEATURES = (*TRANSPORT_PROBES, *SETTING_PROBES, "machine:NAME")


def _settings(qemu: Qemu) -> set[str]:
    """The features of SETTING_PROBES ``qemu`` takes; each is turned off again
    (so the transport probes that follow see the defaults)."""
    found = set()
    for name, (command, on, off) in SETTING_PROBES.items():
        if qemu.execute(command, on).ok:
            found.add(name)
            qemu.cmd(command, off)
    return found


def probe(build: QemuBuild, timeout: float = 10.0) -> tuple[str, ...]:
    """The features ``build`` has, sorted (see the module doc); one QEMU start
    in the usual case (a failed ``migrate-incoming`` may be retried, a successful
    one needs a fresh QEMU). QemuError when the build cannot be asked."""
    found: set[str] = set()
    todo = list(TRANSPORT_PROBES.items())
    while True:
        options = QemuOptions(incoming_defer=True, timeout=timeout)
        with Qemu(build, options, name="probe") as qemu:
            if not found:
                found |= _settings(qemu)
                for entry in json_list(qemu.cmd("query-machines")):
                    machine = json_object(entry)
                    found.add(f"machine:{machine['name']}")
                    if machine.get("alias"):
                        found.add(f"machine:{machine['alias']}")
            while todo:
                name, (uri, lacking_text) = todo.pop(0)
                reply = qemu.execute("migrate-incoming", {"uri": uri})
                if reply.ok or lacking_text not in (reply.desc or ""):
                    found.add(name)
                if reply.ok:
                    break  # this QEMU now waits for a migration: ask the next in a fresh one
        if not todo:
            return tuple(sorted(found))


def with_features(build: QemuBuild, timeout: float = 10.0) -> QemuBuild:
    """``build`` with its probed features recorded (``features_probed`` set)."""
    return replace(build, features=probe(build, timeout), features_probed=True)


def lacking(build: QemuBuild, needs: tuple[str, ...]) -> list[str]:
    """The needs ``build`` lacks; none when its features were never probed."""
    if not build.features_probed:
        return []
    have = set(build.features)
    return [n for n in needs if n not in have]

