"""The run's options are declared once (``qmpcompat.runconfig``): every command
that takes one declares it from the table, and the commands and the plugin read
the same values into the same selection."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from qmpcompat.cli import parser
from qmpcompat.runconfig import OPTIONS, SelectionConfig, add_pytest, markdown, selection_config


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by its name path (``report defect``)."""
    out: dict[str, argparse.ArgumentParser] = {}
    for action in p._actions:  # argparse offers no public walk of its sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub
                out.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return out


# the same spelling, another meaning: query --quiet prints nothing at all, hunt
# --fail-on-known is a flag (exit 1 on any finding), not the gate's list of kinds
OTHER_MEANING = {("query", "--quiet"), ("hunt", "--fail-on-known")}


class _Group:
    """A pytest option group, over argparse (what ``add_pytest`` needs of it)."""

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser()

    def addoption(self, *opts: str, **attrs: object) -> None:
        self.parser.add_argument(*opts, **attrs)  # type: ignore[arg-type]


def _plugin_parser() -> argparse.ArgumentParser:
    group = _Group()
    add_pytest(group)
    return group.parser


def _declared() -> list[tuple[str, str, argparse.Action]]:
    return [(cmd, opt, action) for cmd, sub in _subparsers(parser()).items()
            for action in sub._actions for opt in action.option_strings]


def test_every_command_declares_the_runs_options_from_the_table() -> None:
    by_cli = {o.cli: o for o in OPTIONS.values()}
    seen = 0
    for cmd, opt, action in _declared():
        option = by_cli.get(opt)
        if option is None or (cmd, opt) in OTHER_MEANING:
            continue
        seen += 1
        assert action.help == option.help, f"qmpcompat {cmd} declares {opt} by hand"
        assert action.dest == option.dest, f"qmpcompat {cmd} keeps {opt} in args.{action.dest}"
    assert seen >= 15  # provision alone takes eight of them


@pytest.mark.parametrize("argv", [
    ["--qemu", "/a/qemu", "--qemu", "pypi:q==1", "--suites", "trixie, sid", "--timeout", "3"],
    ["--suites", "", "--qemu", "x"],
    [],
])
def test_commands_and_plugin_make_the_same_selection(argv: list[str]) -> None:
    cli = parser().parse_args(["provision", *argv])
    plugin = _plugin_parser()
    plugin_argv = [a if not a.startswith("--") or a == "--qemu" else "--qmpcompat-" + a[2:]
                   for a in argv]
    from_plugin = plugin.parse_args(plugin_argv)
    ours, theirs = selection_config(cli), _as_plugin(from_plugin)
    assert (ours.qemu, ours.suites) == (theirs.qemu, theirs.suites)
    if "--timeout" in argv:
        assert ours.timeout == theirs.timeout == 3.0
    else:  # provision checks builds with more patience than a run's cases
        assert (ours.timeout, theirs.timeout) == (20.0, 10.0)


def _as_plugin(ns: argparse.Namespace) -> SelectionConfig:
    class Config:  # what the plugin reads from: pytest.Config.getoption
        def getoption(self, name: str, default: object = None) -> object:
            return getattr(ns, name, default)
    return selection_config(Config())


@pytest.mark.parametrize(("option", "bad", "message"), [
    ("--qmpcompat-fail-on-known", "boom", "give crash, hang or crash,hang"),
    ("--qmpcompat-timeout", "nan", "a timeout must be more than 0"),
    ("--qmpcompat-fail-on", "severe", "invalid choice: 'severe'"),
])
def test_a_bad_value_is_a_usage_error_naming_the_option(
        option: str, bad: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = _plugin_parser()
    with pytest.raises(SystemExit) as exc:
        plugin.parse_args([option, bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and message in err


def test_the_options_page_shows_the_declared_options() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "running.md").read_text()
    start, end = "<!-- options: made from qmpcompat/runconfig.py -->\n", "<!-- end of options -->"
    shown = page[page.index(start) + len(start):page.index(end)]
    assert shown == markdown(), "docs/running.md: paste qmpcompat.runconfig.markdown() there"
