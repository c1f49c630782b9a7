"""The safety gate (``qmpcompat.safety``) applied to a vector: everything its
run would send or set, checked before any QEMU starts, each problem naming its
place in the vector (``arguments/...``, ``requires/parameters/...``, ...).

Lint reports these problems with the vector's file and line; the runner
refuses a vector that has any. The same gate checks again, on the filled-in
values, inside the harness.
"""

from __future__ import annotations

from qmpcompat.guest import template_files
from qmpcompat.safety import Policy, command_problems, machine_problem, option_problems
from qmpcompat.types import Version
from qmpcompat.vectors.limits import check_limits
from qmpcompat.vectors.model import Vector
from qmpcompat.vectors.plan import qemu_options, setup_commands


def refusals(vec: Vector, allow_exec: bool = False) -> list[str]:
    """Why ``vec`` may not run: argument trees over the limits (then nothing in
    them is gone through: a tree of thousands of members is one problem, not one
    per member), else each safety problem (``unsafe: ...``)."""
    return check_limits(vec) or [f"unsafe: {msg}" for msg in check_vector(vec, allow_exec)]


def check_vector(vec: Vector, allow_exec: bool = False) -> list[str]:
    """Every safety problem of a vector as written (placeholders unfilled): its
    machine, its setup commands, its command and its peer's, its fds."""
    policy = Policy.template(allow_exec)
    problems = []
    if why := machine_problem(vec.machine):
        problems.append(f"requires/machine: {why}")
    if vec.guest is not None:
        files = template_files(vec.guest)
        for source in (True, False):
            opts = qemu_options(vec, not source, 1.0, files, Version(1, 0, 0), source)
            argv = ["-M", opts.machine, "-m", opts.memory or "", *opts.extra_args]
            problems += [f"requires/guest: {p}" for p in option_problems(argv, policy)]
    for command, arguments, where in setup_commands(vec):
        problems += command_problems(command, arguments, policy, where)
    problems += command_problems(vec.command, vec.arguments, policy, "arguments")
    if vec.peer and vec.peer.arguments is not None:
        problems += command_problems(vec.peer.command, vec.peer.arguments, policy,
                                     "peer/arguments")
    for fd in list(vec.fds) + list(vec.peer.fds if vec.peer else ()):
        if fd.kind != "pair" and (why := policy.path_problem(fd.path)):
            problems.append(f"fds/{fd.name}: {why}")
    return list(dict.fromkeys(problems))
