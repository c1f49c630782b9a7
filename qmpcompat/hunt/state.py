"""A small model of the migration state machine, as Hypothesis strategies of
transcripts: what a client may send before, with and after the command under
test.

A transcript is up to two steps that set state first (``migrate-set-parameters``
with a migration ``mode``, or with one or two other parameters; or
``migrate-set-capabilities``), then the command under test (``migrate`` or
``migrate-incoming``), then up to two steps that act on what it started: the same
or the other command again, ``migrate_cancel``, ``migrate-recover``,
``migrate-pause``, ``migrate-continue``, ``migrate-start-postcopy`` or
``query-migrate`` (sent at once, so while a migration still runs). Every step's
arguments come from the binary's own schema and the same value catalogue as the
single-command trees, and every step passes the safety gate
(``qmpcompat.safety``) before it is sent. Shrinking goes
toward fewer steps, then toward the simpler single-command tree.
"""

from __future__ import annotations

from functools import partial

from hypothesis import strategies as st

from qmpcompat.hunt.strategies import TreeStrategies
from qmpcompat.types import JSON, JSONObject
from qmpcompat.vectors.transcript import Step

# The commands a transcript sends, and the migration parameters the model sets:
# plain numbers, enums and booleans (not the TLS object names, not
# block-bitmap-mapping, not cpr-exec-command, which the safety gate would only
# allow as a sink anyway).
STEP_COMMANDS = ("migrate", "migrate-incoming", "migrate-set-capabilities",
                 "migrate-set-parameters", "migrate_cancel", "migrate-recover", "migrate-pause",
                 "migrate-continue", "migrate-start-postcopy", "query-migrate")
MODEL_PARAMETERS = (
    "announce-initial", "announce-max", "announce-rounds", "announce-step",
    "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
    "cpu-throttle-tailslow", "max-bandwidth", "avail-switchover-bandwidth", "downtime-limit",
    "x-checkpoint-delay", "multifd-channels", "xbzrle-cache-size", "max-postcopy-bandwidth",
    "max-cpu-throttle", "multifd-compression", "multifd-zlib-level", "multifd-qatzip-level",
    "multifd-zstd-level", "x-vcpu-dirty-limit-period", "vcpu-dirty-limit", "mode",
    "zero-page-detection", "direct-io", "x-rdma-chunk-size", "compress-level",
    "compress-threads", "compress-wait-thread", "decompress-threads", "block-incremental")
BEFORE_MAX = 2
AFTER_MAX = 2
AFTER = {
    "migrate": ("migrate", "migrate_cancel", "migrate-incoming", "migrate-recover",
                "query-migrate", "migrate-pause", "migrate-continue", "migrate-start-postcopy"),
    "migrate-incoming": ("migrate-incoming", "migrate", "migrate_cancel", "migrate-recover",
                         "query-migrate", "migrate-pause", "migrate-continue"),
}


def step(command: str, arguments: JSONObject) -> Step:
    return {"execute": command, "arguments": arguments}


class StateModel:
    """Transcript strategies over one schema."""

    def __init__(self, trees: TreeStrategies) -> None:
        self.trees = trees
        self.walker = trees.walker
        self.has = {c for c in STEP_COMMANDS if c in self.walker.index}

    def single(self, command: str) -> st.SearchStrategy[list[Step]]:
        """One step: ``command`` with a schema-valid argument tree."""
        return self.trees.arguments(command).map(lambda a: [step(command, a)])

    def _parameters(self) -> dict[str, st.SearchStrategy[JSON]]:
        """Each settable safe parameter and the strategy of its values."""
        arg = self.walker.arg_type("migrate-set-parameters")
        members = {m.name: m for shape in self.walker.shapes(arg) for m in shape.members}
        return {name: self.trees.of(members[name].type, name)
                for name in MODEL_PARAMETERS if name in members}

    def before(self) -> list[st.SearchStrategy[Step]]:
        """The steps that set state before the command."""
        out: list[st.SearchStrategy[Step]] = []
        if "migrate-set-parameters" in self.has:
            params = self._parameters()
            if "mode" in params:
                out.append(params["mode"].map(
                    lambda m: step("migrate-set-parameters", {"mode": m})))
            names = sorted(params)
            if names:
                out.append(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)
                           .flatmap(lambda chosen: st.fixed_dictionaries(
                               {n: params[n] for n in chosen}))
                           .map(lambda a: step("migrate-set-parameters", a)))
        if "migrate-set-capabilities" in self.has:
            out.append(self.trees.arguments("migrate-set-capabilities").map(
                lambda a: step("migrate-set-capabilities", a)))
        return out

    def after(self, command: str) -> list[st.SearchStrategy[Step]]:
        """The steps that act on what ``command`` started."""
        return [self.trees.arguments(c).map(partial(step, c))
                for c in AFTER[command] if c in self.has]

    def transcripts(self, command: str) -> st.SearchStrategy[list[Step]]:
        """State first, the command, then what acts on it; at least one step
        besides the command."""
        before, after = self.before(), self.after(command)
        main = self.single(command)
        shapes = []
        if before:
            shapes.append(st.tuples(st.lists(st.one_of(before), min_size=1, max_size=BEFORE_MAX),
                                    main, st.lists(st.one_of(after), max_size=AFTER_MAX)
                                    if after else st.just([])))
        if after:
            shapes.append(st.tuples(st.just([]), main,
                                    st.lists(st.one_of(after), min_size=1, max_size=AFTER_MAX)))
        if not shapes:
            return main
        return st.one_of(shapes).map(lambda t: [*t[0], *t[1], *t[2]])
