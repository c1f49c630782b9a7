"""The ``qmpcompat`` command: one subcommand per job, each in the module that owns it.

Exit status: 0 success, 1 findings (a failed check, breaking changes at the
chosen level), 2 usage or input error. Errors are one clear message, never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from qmpcompat import __version__
from qmpcompat.errors import QmpCompatError

# Each module named here has ``register(subparsers)``, which adds its
# subcommands and sets ``func`` (args -> exit status) on each.
COMMAND_MODULES = (
    "qmpcompat.provision.cli",
    "qmpcompat.vectors.cli",
    "qmpcompat.claims.cli",
    "qmpcompat.schema.cli",
    "qmpcompat.report.cli",
    "qmpcompat.hunt.cli",
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="qmpcompat", description=__doc__.split("\n")[0])
    top.add_argument("--version", action="version", version=f"qmpcompat {__version__}")
    subs = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subs)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except QmpCompatError as exc:
        print(f"qmpcompat {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qmpcompat {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
