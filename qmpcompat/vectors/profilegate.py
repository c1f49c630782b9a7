"""The safety gate (``qmpcompat.safety``) applied to a consumer profile:
everything a run of it would make QEMU do, checked before any QEMU starts,
each problem naming its place (``steps/ID/arguments/...``, ``start/destination``).

A step's arguments are checked in their widest expansion (every condition
true, every listed capability and parameter present), the fds the consumer
connects by their address, the destination's ``-incoming`` and both sides'
guest options as the command line. What a generator takes from QEMU's own
answers at run time (a capability list echoed back) is checked by the
harness before it is sent.
"""

from __future__ import annotations

from qmpcompat.safety import Policy, command_problems, option_problems
from qmpcompat.vectors.profileguest import template_argv
from qmpcompat.vectors.profileprog import ProgramError, widest
from qmpcompat.vectors.profiles import Profile


def gate_problems(profile: Profile, allow_exec: bool = False) -> list[str]:
    """Every reason the gate refuses something the profile would send or start."""
    policy = Policy.template(allow_exec)
    out: list[str] = []
    for source in (True, False):
        argv = template_argv(profile.guest, source, "" if source else profile.incoming)
        where = "start/source" if source else "start/destination"
        out += [f"{where}: {p}" for p in option_problems(argv, policy)]
    for group, steps in (("steps", profile.steps), ("cancel", profile.cancel)):
        for step in steps:
            where = f"{group}/{step.id}"
            if step.fd_name and (why := policy.uri_problem(step.fd_connect)):
                out.append(f"{where}/pass-fd: {why}")
            if step.fd_connect and not step.fd_connect.startswith(("tcp:", "unix:")):
                out.append(f"{where}/pass-fd: connect {step.fd_connect!r} is neither tcp: nor unix:")
            if step.execute is None:
                continue
            try:
                arguments = widest(step.arguments or {})
            except ProgramError as exc:
                out.append(f"{where}/arguments: {exc}")
                continue
            if not isinstance(arguments, dict):
                out.append(f"{where}/arguments: not a mapping")
                continue
            out += command_problems(step.execute, arguments, policy, f"{where}/arguments")
    return list(dict.fromkeys(out))
