"""The documentation site builds, its internal links hold, and it opens in a browser.

The site is built once per session with warnings as errors (``-W -n``: every
internal cross-reference resolves) into a temporary directory, unless
``WSCODEC_DOCS_HTML`` names one already built (``.ci/docs`` builds it, checks
its links, then runs these tests on it). Debian's chromium (never a downloaded
browser) opens the front page and an API page; the screenshots go to
``artifacts/docs/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.demo.test_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.helpers import system_program_missing
from tests.test_layout import README

DOCS = README.parent / "docs"

pytestmark = pytest.mark.timeout(300)
# What .ci/docs runs: warnings are errors, every internal cross-reference must resolve.
SPHINX_BUILD = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]


def require_docs_sources() -> None:
    if not (DOCS / "conf.py").exists():
        pytest.skip("no docs/ beside tests/ (a wheel's or an sdist's test run has none)")


@pytest.fixture(scope="session")
def check_links():  # docs/check_links.py, the gate's link checker
    require_docs_sources()
    sys.path.insert(0, str(DOCS))
    import check_links

    return check_links


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_docs_sources()
    built = os.environ.get("WSCODEC_DOCS_HTML")
    if built:
        return Path(built)
    try:
        import furo  # noqa: F401
        import myst_parser  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as error:
        system_program_missing(f"{error.name} is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [*SPHINX_BUILD, "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_the_site_has_every_part(site: Path):
    for page in [
        "index.html",
        "getting-started.html",
        "serving/index.html",
        "serving/threaded.html",
        "serving/events.html",
        "serving/asyncio.html",
        "client.html",
        "compression.html",
        "limits.html",
        "keepalive.html",
        "tls.html",
        "scaling.html",
        "adapters/index.html",
        "codec.html",
        "backends.html",
        "benchmarks.html",
        "api/index.html",
        "changelog.html",
    ]:
        assert (site / page).exists(), page
    api = (site / "api" / "sync.html").read_text(encoding="utf-8")
    assert 'id="wscodec.sync.server.serve"' in api
    assert "max_connections" in api  # the signature, with its parameters and hints
    charts = (site / "benchmarks.html").read_text(encoding="utf-8")
    assert "kernels.svg" in charts and "server.svg" in charts
    assert "CPU:" in charts  # the recorded run's machine and date


def test_every_internal_link_and_anchor_resolves(site: Path, check_links):
    problems, checked, _ = check_links.broken_links(site)
    assert problems == []
    assert checked > 500


def test_the_link_checker_finds_a_broken_link_and_a_missing_anchor(tmp_path: Path, check_links):
    (tmp_path / "index.html").write_text(
        '<a href="other.html#here">ok</a><a href="other.html#gone">x</a>'
        '<a href="missing.html">y</a><a href="https://example.com/">out</a>'
    )
    (tmp_path / "other.html").write_text('<h1 id="here">Other</h1>')
    problems, checked, external = check_links.broken_links(tmp_path)
    assert checked == 3 and external == {"example.com"}
    assert problems == [
        "index.html: other.html#gone: no anchor #gone",
        "index.html: missing.html: no such file",
    ]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        system_program_missing("Playwright is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        system_program_missing(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    preload = os.environ.pop("LD_PRELOAD", None)  # see tests/demo/test_browser.py
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if preload is not None:
            os.environ["LD_PRELOAD"] = preload


def test_the_site_opens_in_chromium_with_screenshots(site: Path, browser: object):
    shots = ARTIFACTS / "docs"
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    errors: list = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((site / "index.html").resolve().as_uri())
    assert page.title().startswith("wscodec")
    assert page.locator("h1").first.inner_text().startswith("wscodec")
    # The chart loaded: an image with a real size, not a broken icon.
    width = page.eval_on_selector("img[src$='kernels.svg']", "img => img.naturalWidth")
    assert width > 100
    # The sidebar lists the guides (furo's navigation, built from the toctree).
    sidebar = page.locator(".sidebar-tree").inner_text()
    assert "Ways of serving" in sidebar and "API reference" in sidebar
    page.screenshot(path=str(shots / "front-page.png"), full_page=False)
    page.goto((site / "api" / "sync.html").resolve().as_uri())
    signature = page.locator("[id='wscodec.sync.server.serve']").inner_text()
    assert "handler" in signature and "port" in signature
    page.screenshot(path=str(shots / "api-sync.png"), full_page=False)
    assert errors == []
