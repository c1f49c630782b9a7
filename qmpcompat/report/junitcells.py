"""JUnit XML test cases from records: the one way a record's outcome becomes a
``failure`` or ``skipped`` element (cases, cross-version cells, consumer cells),
and the testsuite of a kind of cell run from a source build to a destination
build (``cross-version``, ``consumers``)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import TypeVar

from qmpcompat.report.runmodes import junit_properties
from qmpcompat.resultdoc import CaseJSON, ConsumerJSON, PairJSON
from qmpcompat.types import Outcome

Rec = TypeVar("Rec", CaseJSON, PairJSON, ConsumerJSON)


def outcome_element(case: ET.Element, rec: CaseJSON | PairJSON | ConsumerJSON, observed: str) -> None:
    """A failed or errored record's ``failure`` (expected and observed side by side),
    a skipped one's ``skipped``, a known defect's ``skipped`` of type pytest.xfail."""
    message = rec.get("message") or ""
    if Outcome(rec["outcome"]).bad:
        fail = ET.SubElement(case, "failure", message=message or "failed")
        fail.text = f"expected: {rec.get('expected')}\nobserved: {observed}"
    elif rec["outcome"] == Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=message)
    elif rec["outcome"] == Outcome.XFAILED:
        ET.SubElement(case, "skipped", type="pytest.xfail", message=message)


def cell_suite(root: ET.Element, name: str, records: Sequence[Rec], test: Callable[[Rec], str],
               keys: tuple[str, ...], more: Callable[[Rec], list[tuple[str, str]]] | None = None) -> None:
    """A testsuite ``name`` with one testcase per cell record, in the given order:
    named ``test(rec)`` like the live run's test id, class ``qmpcompat.NAME``,
    the record's ``keys`` (and ``more(rec)``) and how its QEMUs ran as properties."""
    if not records:
        return
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(records)),
                          failures=str(sum(Outcome(r["outcome"]).bad for r in records)),
                          skipped=str(sum(r["outcome"] in ("skipped", "xfailed") for r in records)))
    for rec in records:
        case = ET.SubElement(suite, "testcase", classname=f"qmpcompat.{name}", name=test(rec),
                             time=str(rec.get("seconds", 0)))
        props = ET.SubElement(case, "properties")
        for key in keys:
            ET.SubElement(props, "property", name=key, value=str(rec.get(key, "")))
        extra = (more(rec) if more else []) + junit_properties(rec.get("observed"))
        for key, value in extra:
            ET.SubElement(props, "property", name=key, value=value)
        outcome_element(case, rec, json.dumps(rec.get("observed")))
