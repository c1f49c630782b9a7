"""Where the ``if:`` conditions of a binary's schema come from.

Introspection carries no ``if:``: what a build lacks because its configuration
left it out looks exactly like a removal. The conditions are in the QAPI source
of the build's version, when that is at hand:

- a build made by ``qmpcompat provision --source`` records its source
  (``debian:VERSION`` or the tree's path) in its cache entry;
- a binary in a QEMU build directory names its source tree in the
  directory's ``config-host.mak`` (``SRC_PATH=``);
- a Debian archive build (package ``Debian 1:10.0.13+ds-0+deb13u1``) was built
  from the source package of that exact Debian version (``debian:VERSION``);
- ``qmpcompat diff --conditions-from SPEC`` names one for every binary input.

A source is used only when it is of the binary's own QEMU version. When none is
at hand for two inputs of the same version, ``note_without_source`` says so in
plain words, since the differ then cannot tell configuration from compatibility.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from qmpcompat.errors import QmpCompatError
from qmpcompat.provision.build import manifest_of
from qmpcompat.schema.sources.input import SchemaInput

# An input kind whose schema has no conditions of its own (it was introspected).
INTROSPECTED = ("qemu", "snapshot", "recorded")
SourceLoader = Callable[[str], SchemaInput]


def _build_dir_source(binary: Path) -> str | None:
    """The source tree of a binary in a QEMU build directory (``SRC_PATH``)."""
    try:
        text = (binary.parent / "config-host.mak").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("SRC_PATH="):
            path = Path(line.removeprefix("SRC_PATH=").strip())
            return str(path) if (path / "qapi").is_dir() else None
    return None


def source_of(schema: SchemaInput) -> str | None:
    """The QAPI source spec the binary behind ``schema`` was built from (see the
    module doc), or None when none is known."""
    binary = schema.meta.get("binary")
    if schema.kind != "qemu" or not binary:
        return None
    path = Path(str(binary))
    build = manifest_of(path)
    if build is not None and build.origin.startswith("source:"):
        return build.origin.removeprefix("source:").rsplit(", profile ", 1)[0]
    if build is not None and build.package.startswith("Debian "):
        return "debian:" + build.package.removeprefix("Debian ")
    return _build_dir_source(path)


def attach(schemas: Sequence[SchemaInput], load: SourceLoader,
           explicit: str | None = None) -> list[str]:
    """Give each introspected input of ``schemas`` the ``if:`` conditions of its
    QAPI source (``explicit``, else ``source_of``), when that source is of the
    input's own version; the conditions come from ``load(spec)``. Only an input
    that another input shares its version with needs them (across versions a
    missing thing is a change whatever its condition). Returns notes
    for the report: which source each input's conditions came from, and why
    one could not be used."""
    notes: list[str] = []
    loaded: dict[str, SchemaInput | str] = {}
    for schema in schemas:
        if schema.kind != "qemu" or schema.conditionals or not any(
                other is not schema and other.version == schema.version for other in schemas):
            continue
        spec = explicit or source_of(schema)
        if spec is None:
            continue
        if spec not in loaded:
            try:
                loaded[spec] = load(spec)
            except QmpCompatError as exc:
                loaded[spec] = str(exc)
        source = loaded[spec]
        if isinstance(source, str):
            notes.append(f"the QAPI source of {schema.label} ({spec}) cannot be read: {source}")
        elif source.version != schema.version:
            notes.append(f"the QAPI source {spec} is of QEMU {source.version or 'unknown version'},"
                         f" not {schema.version}: its 'if' conditions are not used for "
                         f"{schema.label}")
        else:
            schema.conditionals = source.conditionals
            schema.meta["conditions-from"] = spec
            notes.append(f"'if' conditions of {schema.label} from the QAPI source {spec}")
    return notes


def note_without_source(schemas: Sequence[SchemaInput]) -> list[str]:
    """A plain note for each pair of inputs of the same QEMU version where no
    QAPI source is at hand: there, what one side lacks is reported as a change
    although it may be configuration only."""
    notes = []
    for i, old in enumerate(schemas):
        for new in schemas[i + 1:]:
            if old.version and old.version == new.version and old.kind in INTROSPECTED \
                    and new.kind in INTROSPECTED and not (old.conditionals or new.conditionals):
                notes.append(f"{old.label} and {new.label} are both QEMU {old.version} and no "
                             "QAPI source of that version is at hand: what one of them lacks is "
                             "reported as a compatibility change, though it may be configuration "
                             "only (name the source with --conditions-from debian:VERSION or a "
                             "QEMU tree)")
    return notes
