"""The input visitor's answer to any argument tree (qmpcompat.derive.visit): it
agrees with every derived case's prediction, lets every valid tree through, says
when it cannot tell, and agrees with what a real QEMU answers to the vectors."""

from __future__ import annotations

import json

from qmpcompat.derive.cases import derive
from qmpcompat.derive.shapes import TypeWalker
from qmpcompat.derive.visit import visit
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.model.query import SchemaIndex
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.load import load
from qmpcompat.vectors.model import COMMANDS
from qmpcompat.vectors.run import Runner

SCHEMAS = SchemaCache()


def test_agrees_with_every_derived_prediction(builds: list[QemuBuild]) -> None:
    for build in builds:
        index = SCHEMAS.index(build)
        for case in derive(index, COMMANDS):
            answer = visit(index, case.command, case.arguments)
            assert answer.decided and answer.prediction == case.prediction, \
                (build.label, case.id, answer)


def test_valid_trees_pass_and_facts_name_the_place(newest: QemuBuild) -> None:
    index = SCHEMAS.index(newest)
    walker = TypeWalker(index)
    for command in COMMANDS:
        for shape in walker.shapes(walker.arg_type(command)):
            answer = visit(index, command, walker.fill(shape))
            assert answer.accepted, (command, shape, answer)
    channel = {"channel-type": "main", "addr": {"transport": "socket", "type": "unix"}}
    answer = visit(index, "migrate", {"channels": [channel]})
    assert str(answer.prediction) == "GenericError: Parameter 'channels[0].addr.path' is missing"
    assert answer.fact == "migrate/arg-type/channels/addr/+socket/+unix/path is mandatory"
    full = {"channel-type": "main", "addr": {**channel["addr"], "path": "{tmpdir}/s"}}
    answer = visit(index, "migrate", {"channels": [{**full, "x": 1, "y": 2}]})
    assert answer.prediction is not None and answer.prediction.pattern  # hash order: either name
    assert answer.prediction.matches("GenericError", "Parameter 'channels[0].y' is unexpected")


def test_says_when_it_cannot_tell(newest: QemuBuild) -> None:
    index = SCHEMAS.index(newest)
    file_addr = {"transport": "file", "filename": "{tmpdir}/f", "offset": 255}
    answer = visit(index, "migrate", {"channels": [{"channel-type": "main", "addr": file_addr}]})
    assert answer.accepted  # every integer type takes 0..255
    file_addr["offset"] = 4096  # a uint64 would take it, a uint8 not: introspection says "int"
    answer = visit(index, "migrate", {"channels": [{"channel-type": "main", "addr": file_addr}]})
    assert not answer.decided
    inet = {"transport": "socket", "type": "inet", "host": "127.0.0.1", "port": "1", "to": 70000}
    answer = visit(index, "migrate", {"channels": [{"channel-type": "main", "addr": inet}]})
    assert not answer.decided and "range is unknown" in answer.fact
    # A snapshot sorts members by name: with two problems in one object the first is unknown.
    entries = json.loads(json.dumps(SCHEMAS.entries(newest)))
    sorted_index = SchemaIndex(entries)
    two = {"channels": [{"addr": {"transport": "bogus"}}]}
    assert visit(sorted_index, "migrate", two).decided
    assert not visit(sorted_index, "migrate", two, ordered=False).decided


def test_real_qemu_gives_the_decided_errors(newest: QemuBuild) -> None:
    """Every vector whose arguments the newest build's schema rejects, run on that
    build: QEMU answers exactly the visitor's error."""
    index = SCHEMAS.index(newest)
    runner = Runner()
    checked = 0
    for vec in load().vectors:
        if vec.capabilities or vec.parameters or vec.fds:
            continue
        answer = visit(index, vec.command, vec.arguments)
        if not answer.decided or answer.prediction is None:
            continue
        obs = runner.run(vec, newest)
        assert answer.prediction.matches(obs.error_class, obs.desc), (vec.id, obs.summary(), answer)
        checked += 1
    assert checked >= 40
