"""The HTML report: self-contained, and it loads with all its images in a real browser."""

import base64
import os
import re
import shutil

import pytest

from gaussmix.cli import main
from gaussmix.datasets import load_faithful

SECTIONS = ["Data", "Model selection", "Chosen model", "Density and components", "Uncertainty",
            "Most anomalous rows"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    data = folder / "faithful.csv"
    X = load_faithful().data
    data.write_text("eruptions,waiting\n" + "\n".join(f"{a},{b}" for a, b in X) + "\n")
    path = folder / "report.html"
    assert main(["report", str(data), "-o", str(path), "--select", "1-5", "--seed", "0", "-q"]) == 0
    return path


def test_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//)""", text), "the page must need no network"
    assert "<script" not in text and "@import" not in text
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == 5
    for source in images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text
    assert "By BIC, the best is <strong>3 components with EEE covariance</strong>" in text
    assert text.count("<tr") > 30  # summary, candidates, parameters, anomalies


def test_feature_names_are_escaped(tmp_path):
    from gaussmix.report import build_report

    text = build_report(load_faithful().data, feature_names=["<b>x</b>", "y&z"],
                        selector=__import__("gaussmix").GaussianMixtureSelector([2], covariance_types=["full"],
                                                                                random_state=0))
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text and "y&amp;z" in text


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("GAUSSMIX_SKIP_BROWSER_TESTS"):
        pytest.skip("GAUSSMIX_SKIP_BROWSER_TESTS is set")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("headless Chromium is needed: 'python3 run.py test' installs Debian's chromium and "
                    "chromium-driver when run as root; or set GAUSSMIX_SKIP_BROWSER_TESTS=1")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1200,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def test_report_renders_in_headless_chromium(report, browser, tmp_path):
    browser.get(report.as_uri())
    assert browser.title == "gaussmix report: faithful.csv"
    state = browser.execute_script(
        "return {ready: document.readyState, images: document.images.length,"
        " loaded: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 100).length,"
        " headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),"
        " height: document.documentElement.scrollHeight}"
    )
    assert state["ready"] == "complete"
    assert state["images"] == 5 and state["loaded"] == 5, state
    assert state["headings"] == SECTIONS
    assert state["height"] > 3000
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory):
    """A report on 20 features (the tables turn, the pictures keep their size)."""
    import numpy as np

    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (150, 20)), rng.normal(2, 1, (150, 20))])
    data = folder / "wide.csv"
    data.write_text(",".join(f"measurement_{j}" for j in range(20)) + "\n"
                    + "\n".join(",".join(f"{v:.5f}" for v in row) for row in X) + "\n")
    path = folder / "wide.html"
    assert main(["report", str(data), "-o", str(path), "--select", "1-2", "--structures", "diag", "--seed", "0",
                 "-q"]) == 0
    return path


def test_wide_report_tables_turn(wide_report):
    text = wide_report.read_text()
    tables = re.findall(r"<table>.*?</table>", text, flags=re.S)
    widths = [len(re.findall(r"<th[ >]", re.search(r"<thead>.*?</thead>", t, flags=re.S).group(0))) for t in tables]
    # Only the covariance matrices (inside a collapsed section, each in its own scrolling box) are 21 wide.
    assert sorted(w for w in widths if w > 12) == [21, 21]
    assert all(t.startswith("<table>") for t in tables) and text.count('<div class="scroll">') == len(tables)


def test_wide_report_fits_the_page_in_headless_chromium(wide_report, browser):
    browser.get(wide_report.as_uri())
    state = browser.execute_script(
        "const d = document.documentElement;"
        "document.querySelectorAll('details').forEach(e => e.open = true);"
        "return {page: d.scrollWidth, view: d.clientWidth,"
        " images: Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight, i.clientWidth]),"
        " boxes: Array.from(document.querySelectorAll('.scroll')).map(b => b.clientWidth <= d.clientWidth)}"
    )
    assert state["page"] <= state["view"], state  # nothing makes the page scroll sideways
    assert all(state["boxes"])
    for natural_width, natural_height, shown in state["images"]:
        assert natural_width <= 1800 and natural_height <= 1800 and 0 < shown <= state["view"]
