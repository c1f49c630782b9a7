"""The HTML report in a real browser (headless Chromium from Debian's packages),
checked the way a person would: the matrix is there, a filter narrows it, and
a failing cell shows what was expected and what QEMU did."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.shared import Shared
from helpers.suite_runner import basic_vectors, run_suite
from test_crash_verdict import crash_vectors

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("Chromium and ChromeDriver must be installed in CI (see .ci/run)")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def report_page(shared: Shared) -> Path:
    """A real run on the newest build where one vector's expectation is wrong
    (once per session)."""

    def make(tmp: Path) -> None:
        vectors = basic_vectors(tmp)
        mig = vectors / "migrate-incoming" / "basic.yaml"
        mig.write_text(mig.read_text().replace("need either 'uri' or 'channels' argument",
                                               "need exactly one of 'uri' and 'channels'"))
        rc, text, _doc = run_suite(tmp, suites="sid", vectors=vectors)
        assert rc == 1, text

    return shared.once("browser-run", make) / "reports" / "index.html"


def test_matrix_filter_and_detail(browser, report_page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(report_page.as_uri())
    assert browser.find_element(By.ID, "verdict").text == "FAIL"
    rows = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr[data-vector]")
    cells = browser.find_elements(By.CSS_SELECTOR, "#matrix td.cell")
    assert len(rows) >= 5 and len(cells) == len(rows)  # one QEMU column
    assert {c.get_attribute("data-outcome") for c in cells} == {"passed", "failed"}

    Select(browser.find_element(By.ID, "filter-outcome")).select_by_value("failed")
    rows = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr[data-vector]")
    assert [r.get_attribute("data-vector") for r in rows] == ["MI-0002"]

    cell = browser.find_element(By.CSS_SELECTOR, "td.cell.failed")
    assert cell.is_displayed() and cell.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    cell.click()
    detail = browser.find_element(By.ID, "detail").text
    assert "MI-0002 on QEMU 11.1" in detail
    assert "need exactly one of 'uri' and 'channels'" in detail  # expected
    assert "need either 'uri' or 'channels' argument" in detail  # what QEMU said

    Select(browser.find_element(By.ID, "filter-outcome")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-command")).select_by_value("migrate")
    rows = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr[data-vector]")
    assert rows and all(r.get_attribute("data-vector").startswith("M-") for r in rows)


def test_header_says_where_modules_and_firmware_came_from(browser, report_page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(report_page.as_uri())
    lines = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#origins li")]
    assert len(lines) == 1 and lines[0].startswith("QEMU 11.1.3: Debian 1:11.1.3"), lines
    assert "debian:sid" in lines[0] and "bios-256k.bin from /" in lines[0]
    assert " loaded from /" in lines[0] and "host's QEMU dirs: " in lines[0]
    [build] = json.loads((report_page.parent / "results.json").read_text())["environment"]["binaries"]
    when = build["provenance"]["remembered"]  # the run took an earlier run's check, or made its own
    assert lines[0].endswith(" \u00b7 self-check: " + (f"of {when}, taken from an earlier run" if when
                                                        else "this run's")), lines[0]


def test_schema_timeline_is_shown(browser, report_page: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(report_page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tr")
    text = {r.text for r in rows}
    assert any(t.startswith("8.2.0 observed") and "migrate/arg-type/channels added" in t for t in text)
    history = browser.find_element(By.ID, "history").text
    assert "No schema is known of QEMU" not in history  # 10.1 and 11.0 are derived
    assert "11.0.0 patch migrate/arg-type/detach removed" in history


def test_header_names_crashes_and_page_shows_changes(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two real builds, one known crash on the newer: the header says PASS but
    not alone, names the defect, and the page lists the behaviour change."""
    from selenium.webdriver.common.by import By

    rc, text, _doc = run_suite(tmp_path, "-k", "M-0041 or MI-0002", suites="bookworm,sid",
                               vectors=crash_vectors(tmp_path))
    assert rc == 0, text
    browser.get((tmp_path / "reports" / "index.html").as_uri())
    assert browser.find_element(By.ID, "verdict").text == \
        "PASS, but QEMU crashed or hung in 1 case (all known defects)"
    assert "KD-0001 (crash on 11.1" in browser.find_element(By.ID, "crashes").text
    changes = browser.find_element(By.ID, "changes").text
    assert "Behaviour changes between builds" in changes and "NEW_CRASH" in changes
    assert "M-0041 (KD-0001)" in changes
