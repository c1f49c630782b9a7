"""The schema side of a case's basis: does the build's own schema decide the
claim? (The input visitor must give exactly the error the expectation names.)"""

from __future__ import annotations

from qmpcompat.claims.history import decided
from qmpcompat.derive.visit import visit
from qmpcompat.errors import SchemaError
from qmpcompat.provision import QemuBuild
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.model import Expectation, Vector


class SchemaDecider:
    """A ``SchemaDecides`` for ``vectors.check.check``, over one SchemaCache."""

    def __init__(self, schemas: SchemaCache) -> None:
        self.schemas = schemas

    def __call__(self, vec: Vector, exp: Expectation, build: QemuBuild) -> str | None:
        """The fact of ``build``'s schema that decides ``exp``, or None."""
        try:
            answer = visit(self.schemas.index(build), vec.command, vec.arguments)
        except SchemaError:
            return None
        return answer.fact if decided(exp, answer) else None
