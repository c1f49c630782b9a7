"""The ``qmpcompat`` command: conformance and compatibility of QEMU's migration QMP interface.

Each subcommand lives in ``qmpcompat.commands`` and is registered here, by name.

Exit status: 0 success, 1 findings (a failed check, breaking changes at the
chosen level), 2 usage or input error. Errors are one clear message, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from qmpcompat import __version__
from qmpcompat.commands import (
    claims,
    consumers,
    history,
    hunt,
    provision,
    query,
    report,
    schema,
    vectors,
)
from qmpcompat.errors import QmpCompatError
from qmpcompat.escape import TerminalStream

# Each adds its subcommands and sets ``func`` (args -> exit status) on each, in
# this order in ``qmpcompat --help``.
REGISTER: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    provision.register,   # provision
    vectors.register,     # try
    claims.register,      # lint, observe, ledger
    query.register,       # query
    schema.register,      # snapshot, diff
    history.register,     # history
    report.register,      # report merge, report render
    hunt.register,        # hunt, derive
    consumers.register,   # consumers observe, consumers compare
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="qmpcompat", description=__doc__.split("\n")[0].replace("``", ""))
    top.add_argument("--version", action="version", version=f"qmpcompat {__version__}")
    subs = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTER:
        register(subs)
    return top


# Formats with an escaping layer of their own, printed as they are (escape.py)
MACHINE_FORMATS = ("json", "markdown", "html", "github", "gitlab", "sarif")


def _machine_output(args: argparse.Namespace) -> bool:
    return (getattr(args, "format", None) in MACHINE_FORMATS or getattr(args, "json", False) is True
            or args.command == "snapshot")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    # What reaches the terminal (or a CI log) passes escape.terminal: no text from a
    # vector, a results file or QEMU can forge a line or a workflow command there.
    streams = sys.stdout, sys.stderr
    sys.stderr = TerminalStream(sys.stderr)
    if not _machine_output(args):
        sys.stdout = TerminalStream(sys.stdout)
    try:
        return func(args)
    except QmpCompatError as exc:
        print(f"qmpcompat {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RecursionError:  # data nested past what any reader here walks: input, not a bug
        print(f"qmpcompat {args.command}: error: input nested too deeply to read", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qmpcompat {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as a shell tool does
        _drop_stdout()
        return 141
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _drop_stdout()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


def _drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for a reader that went
    away is not written (nor a second error raised at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
