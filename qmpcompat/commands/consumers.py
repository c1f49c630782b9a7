"""``qmpcompat consumers``: the real consumer on the wire.

``consumers observe CP-NNNN`` runs the real libvirt of the profile's version
(Debian's packages, unpacked into the cache) here, lets it migrate the test
guest between the selected QEMU builds, and writes what it sent to each QEMU
as a recording under ``vectors/consumers/wire/CP-NNNN/``. ``consumers compare``
holds each profile against its recordings and prints every difference (no
libvirt needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qmpcompat.commands.selection import selected_builds, selection_parser, sources_and_destination
from qmpcompat.errors import QmpCompatError
from qmpcompat.libvirt.observe import observe
from qmpcompat.libvirt.session import unusable
from qmpcompat.libvirt.tree import libvirt_at
from qmpcompat.provision.debian import print_progress
from qmpcompat.runconfig import add_cli
from qmpcompat.types import Version
from qmpcompat.vectors.lint import canonical_text
from qmpcompat.vectors.load import default_root, load
from qmpcompat.vectors.profiles import Profile
from qmpcompat.vectors.wire import load_recording, recording_name, recording_path, recordings
from qmpcompat.vectors.wirecheck import WireCheck, hold
from qmpcompat.vectors.yamlfile import editable_yaml


def register(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    about = (__doc__ or "\n\n").split("\n\n")[1].replace("\n", " ").replace("``", "")
    top = subs.add_parser("consumers", help="observe the real consumer (libvirt) and hold the "
                          "profiles against what it sent", description=about)
    cmds = top.add_subparsers(dest="consumers_command", metavar="COMMAND", required=True)
    o = cmds.add_parser("observe", parents=[selection_parser()],
                        help="let the real libvirt migrate the test guest and record what it sent",
                        description="Run the real libvirt of a profile's version here (two "
                        "session daemons as uid nobody; needs root to set them up) and migrate "
                        "the test guest from each selected build to itself, or to --to; write "
                        "each recording to vectors/consumers/wire/PROFILE/SRC-to-DST.json.")
    o.add_argument("profile", help="a consumer profile id (a libvirt one), e.g. CP-0001")
    o.add_argument("--to", metavar="LABEL",
                   help="migrate to the build with this label (of the --qemu/--suites selection, "
                        "whatever --only says)")
    add_cli(o, ("vectors",))
    o.set_defaults(func=run_observe)
    c = cmds.add_parser("compare", help="hold profiles against their recordings; every difference",
                        description="Play each profile on paper against each recording of the "
                        "real consumer and print every difference (command, arguments, order, "
                        "conditions). Exit 1 when there is one.")
    c.add_argument("profiles", nargs="*", help="profile ids (default: every profile with recordings)")
    add_cli(c, ("vectors",))
    c.add_argument("--json", action="store_true", help="one JSON object per recording")
    c.add_argument("--mark", action="store_true",
                   help="write each step's observed list: the recordings that show it as the "
                        "profile says it (a step seen in none loses its list)")
    c.set_defaults(func=run_compare)


def _profile(root: Path | None, pid: str) -> Profile:
    found = next((p for p in load(root).profiles if p.id == pid), None)
    if found is None:
        raise QmpCompatError(f"unknown consumer profile {pid}")
    return found


def run_observe(args: argparse.Namespace) -> int:
    """Exit 0 when every migration was recorded (whatever libvirt and QEMU did)."""
    if why := unusable():
        raise QmpCompatError(f"cannot run libvirt here: {why}")
    root = args.vectors or default_root()
    profile = _profile(args.vectors, args.profile)
    if profile.consumer != "libvirt":
        raise QmpCompatError(f"{profile.id} is {profile.name}: only libvirt can be observed here")
    tree = libvirt_at(profile.version, progress=print_progress)
    builds, target = sources_and_destination(args, selected_builds(args).builds)
    for src in builds:
        dst = target or src
        rec = observe(profile, tree, src, dst, print_progress)
        path = recording_path(root, profile.id, recording_name(src.version_str, dst.version_str))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1, sort_keys=False) + "\n")
        checked = hold(profile, load_recording(root, path))
        print(f"{profile.id} {src.label}->{dst.label}: {path} ({len(checked.differences)} "
              "difference(s) from the profile: qmpcompat consumers compare)")
    return 0


def mark_observed(profile: Profile, root: Path, checks: dict[str, WireCheck]) -> bool:
    """Rewrite the profile's file with each step's ``observed``: the recordings
    in ``checks`` that show it as the profile says it. True when it changed."""
    path = root.parent / profile.file
    data = editable_yaml(path)
    if not isinstance(data, dict):
        return False
    for group in ("steps", "cancel"):
        for step in data.get(group) or []:
            seen = sorted((n for n, c in checks.items() if c.seen(str(step.get("id")))),
                          key=lambda n: [Version.parse(v) for v in n.split("-to-")])
            step.pop("observed", None)
            if seen:
                step["observed"] = seen
    text = canonical_text(path, data)
    if text == path.read_text():
        return False
    path.write_text(text)
    return True


def run_compare(args: argparse.Namespace) -> int:
    root = args.vectors or default_root()
    every = load(args.vectors).profiles
    if unknown := sorted(set(args.profiles or ()) - {p.id for p in every}):
        print(f"qmpcompat consumers compare: no such profile: {', '.join(unknown)}", file=sys.stderr)
        return 2
    status = 0
    for profile in (p for p in every if not args.profiles or p.id in args.profiles):
        checks: dict[str, WireCheck] = {}
        found = recordings(root, profile.id)
        if not found and not args.json:
            print(f"{profile.id}: no recordings of {profile.consumer} {profile.version} to hold it against")
        for name, rec in found.items():
            check = checks[name] = hold(profile, rec)
            status = max(status, 1 if check.differences else 0)
            if args.json:
                print(json.dumps({"profile": profile.id, "recording": rec.file,
                                  "matched": check.matched, "skipped": check.skipped,
                                  "differences": [str(d) for d in check.differences]}))
                continue
            print(f"{profile.id} against {rec.title}: {len(check.matched)} steps seen, "
                  f"{len(check.skipped)} not taken, {len(check.differences)} difference(s)")
            for diff in check.differences:
                print(f"  {diff}")
        if args.mark and checks and mark_observed(profile, root, checks):
            print(f"{profile.file}: observed lists written")
    return status
