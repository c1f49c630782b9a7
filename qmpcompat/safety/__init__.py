"""The safety gate: one allow-list for everything qmpcompat makes QEMU do.

Vectors, derived cases, hunt trees, ``qmpcompat try`` and the benchmark all
reach QEMU through ``qmpcompat.harness.Qemu``, which asks this gate before it
starts a QEMU (``check_options``) and before it sends any command
(``check_command``); a refusal raises ``UnsafeInput`` and nothing is started or
sent. Lint, the vector runner, ``derive`` and ``hunt`` ask the same questions
earlier (``command_problems``, ``option_problems`` with ``Policy.template()``)
so a refusal names its file, line and vector, and a hunt draws another tree.

What is allowed (everything else is refused):

- commands, members and enum values listed in ``commands.COMMANDS`` (and
  read-only ``query-*`` commands without arguments); a member or value QEMU adds
  later is refused until it is added there;
- network: literal loopback addresses only (127.0.0.0/8, ::1), and ``localhost``
  where this host answers it from /etc/hosts with loopback alone (no resolver
  is asked: ``policy.resolves_locally``); vsock cid 1;
- files and sockets: only inside the case's own directory (``Policy.case_dir``);
- processes: only the harness's sink commands, ``cat > DIR/NAME`` and
  ``cat DIR/NAME`` (DIR shell-quoted), as an ``exec:`` uri or as the argv
  ``['/bin/sh', '-c', ...]`` (also ``cpr-exec-command``);
- QEMU options listed in ``options.OPTIONS``; machine types without properties
  that read or write host files.

``Policy(allow_exec=True)`` (``--qmpcompat-allow-exec``, ``lint --allow-exec``)
is the only widening: any exec command may run. Whoever turns it on prints
``ALLOW_EXEC_WARNING`` where the user looks (terminal and reports).

Placeholders: ``fill`` puts a case's dir and port into a tree, shell-quoting the
dir inside sink commands; ``qemu_opt`` escapes a value for a QEMU option string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qmpcompat.errors import UnsafeInput
from qmpcompat.safety.commands import COMMANDS, command_problems
from qmpcompat.safety.options import OPTIONS, machine_problem, option_problems
from qmpcompat.safety.policy import PORT, TMPDIR, Policy, fill, is_loopback, qemu_opt, split_qemu_opts

ALLOW_EXEC_WARNING = ("WARNING: --qmpcompat-allow-exec is on: vectors may make QEMU run any "
                      "command on this host, not only the harness's sink commands")


def check_command(command: str, arguments: Mapping[str, object] | None, policy: Policy) -> None:
    """Return if ``command`` may be sent with ``arguments``; raise UnsafeInput otherwise."""
    problems = command_problems(command, arguments, policy)
    if problems:
        raise UnsafeInput(command, problems)


def check_options(options: Sequence[str], policy: Policy) -> None:
    """Return if QEMU may start with ``options``; raise UnsafeInput otherwise."""
    problems = option_problems(options, policy)
    if problems:
        raise UnsafeInput("the QEMU command line", problems)


__all__ = ["ALLOW_EXEC_WARNING", "COMMANDS", "OPTIONS", "PORT", "TMPDIR", "Policy",
           "UnsafeInput", "check_command", "check_options", "command_problems", "fill",
           "is_loopback", "machine_problem", "option_problems", "qemu_opt", "split_qemu_opts"]
