"""JUnit XML from a results document (for merged or re-rendered runs; a live
pytest run writes its own with ``--junitxml``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from qmpcompat.escape import xml_attribute, xml_text
from qmpcompat.report.consumers import junit_suite as consumers_suite
from qmpcompat.report.junitcells import outcome_element
from qmpcompat.report.matrix import junit_suite
from qmpcompat.report.runmodes import junit_properties
from qmpcompat.resultdoc import CaseJSON, ResultsJSON
from qmpcompat.types import Outcome, qemu_id


def _sanitize(root: ET.Element) -> None:
    for el in root.iter():
        el.attrib = {k: xml_attribute(v) for k, v in el.attrib.items()}
        if el.text is not None:
            el.text = xml_text(el.text)


def _observed(rec: CaseJSON) -> str:
    obs = rec.get("observed")
    if not obs:
        return "(not run)"
    if obs.get("result") == "reject":
        return f"reject {obs.get('error_class')}: {obs.get('desc')}"
    return ", ".join(f"{k}={v}" for k, v in obs.items() if k != "seconds")


def render_junit(doc: ResultsJSON) -> str:
    """One testsuite per QEMU label, one testcase per vector; every case has the
    vector id, QEMU version, binary and outcome as properties, and a failure
    shows expected and observed side by side."""
    root = ET.Element("testsuites", name="qmpcompat")
    by_label: dict[str, list[CaseJSON]] = defaultdict(list)
    for rec in doc["results"]:
        by_label[rec["qemu"]].append(rec)
    for label, records in sorted(by_label.items()):
        suite = ET.SubElement(root, "testsuite", name=qemu_id(label), tests=str(len(records)),
                              failures=str(sum(Outcome(r["outcome"]).bad for r in records)),
                              skipped=str(sum(r["outcome"] in ("skipped", "xfailed") for r in records)))
        for rec in records:
            case = ET.SubElement(suite, "testcase", classname=f"qmpcompat.{rec['command']}",
                                 name=f"{rec['vector']}[{qemu_id(label)}]", time=str(rec.get("seconds", 0)))
            props = ET.SubElement(case, "properties")
            for key in ("vector", "qemu_version", "binary", "outcome"):
                ET.SubElement(props, "property", name=key, value=str(rec.get(key, "")))
            for key, value in junit_properties(rec.get("observed")):
                ET.SubElement(props, "property", name=key, value=value)
            outcome_element(case, rec, _observed(rec))
    junit_suite(root, doc)
    consumers_suite(root, doc)
    if doc.get("running") or doc.get("interrupted"):
        suite = ET.SubElement(root, "testsuite", name="qmpcompat-run", tests="1", failures="1")
        case = ET.SubElement(suite, "testcase", classname="qmpcompat", name="run-finished")
        what = "never finished" if doc.get("running") else "was interrupted"
        ET.SubElement(case, "failure", message=f"the run {what}: its results are incomplete")
    _sanitize(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
