"""The course website (`make site`) as a reader meets it: every page in a real (headless) Chromium.

Builds the site once for this module (docs/site/build.py, as `make site` does, into a temporary
folder), serves it from a thread on localhost, and opens every page with all other hosts
blocked. Each page must load with no console error and no failed request, every image must
have loaded with a non-zero size, math written as $…$ in the source must have been typeset by
the site's own MathJax, and no page may show a line of the instructor's solutions. Screenshots
of the landing page and of one lecture go to build/site-screenshots/.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "site-screenshots"
TIMEOUT_MS = 60_000  # per wait; the machine is shared and bursts can be slow
SCREENSHOT_NOTEBOOK = "notebooks/01_llm_as_policy.html"

pytestmark = pytest.mark.slow


def _site_pages() -> list[str]:
    """Every page the build makes, known before it runs (so each is its own test)."""
    pages = ["index.html", "about.html", "api.html", "homework.html", "genindex.html", "py-modindex.html",
             "search.html"]
    pages += [f"notebooks/{p.stem}.html" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    pages += [f"homework/{p.stem}.html" for p in sorted((ROOT / "exercises").glob("*.ipynb"))]
    return pages


PAGES = _site_pages()


def _markdown_has_math(page: str) -> bool:
    """Whether the source of ``page`` writes math as $…$ (notebook markdown cells only)."""
    folder = {"notebooks": "notebooks", "homework": "exercises"}.get(page.split("/")[0])
    if folder is None or "/" not in page:
        return False
    nb = json.loads((ROOT / folder / f"{Path(page).stem}.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.search(r"\$[^$\s][^$]*\$", text) is not None


def _solution_lines() -> list[str]:
    """Lines of the solutions' answers (between BEGIN/END SOLUTION) found in no exercise or lecture:
    a page showing one of them shows the instructor's answer."""
    public = "\n".join(p.read_text() for folder in ("exercises", "notebooks") for p in (ROOT / folder).glob("*.ipynb"))
    public_lines = {line.strip() for line in "\n".join(
        "".join(c["source"]) for folder in ("exercises", "notebooks") for p in (ROOT / folder).glob("*.ipynb")
        for c in json.loads(p.read_text())["cells"]).splitlines()}
    lines = set()
    for path in (ROOT / "solutions").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            inside = False
            for line in "".join(cell["source"]).splitlines():
                if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                    inside = "BEGIN" in line
                elif inside:
                    line = line.strip()
                    if len(line) >= 20 and not line.startswith("#") and line not in public_lines and line not in public:
                        lines.add(line)
    return sorted(lines)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once for this module exactly as `make site` builds it."""
    spec = importlib.util.spec_from_file_location("site_build", ROOT / "docs" / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("site") / "site")


@pytest.fixture(scope="module")
def served(site):
    """http://127.0.0.1:PORT serving the built folder from a thread."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output for failures
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def open_page(browser, base: str, path: str):
    """Open ``path`` with every non-localhost request blocked; return the page and what went wrong."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems = {"offsite": [], "console": [], "failed": []}
    local = urlsplit(base).netloc

    def route(r):
        if urlsplit(r.request.url).netloc == local:
            r.continue_()
        else:
            problems["offsite"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and problems["console"].append(f"{m.text} ({m.location.get('url')})"))
    page.on("pageerror", lambda e: problems["console"].append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: problems["failed"].append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems["failed"].append(f"{r.url}: HTTP {r.status}"))
    page.goto(f"{base}/{path}", wait_until="load")
    # MathJax typesets after the load event; wait until it has finished (when the page loads it).
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    # Images below the fold may be lazy: load them all, then wait until each has settled.
    page.evaluate("""() => Promise.all([...document.images].map(img => {
        img.loading = 'eager';
        return img.complete ? null : new Promise(done => { img.onload = img.onerror = done; });
    }))""")
    return context, page, problems


def test_the_solutions_hold_lines_to_look_for():
    """The leak check below is only as good as its list: it must not be empty."""
    assert len(_solution_lines()) >= 10, _solution_lines()


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_with_images_math_and_no_solutions(served, browser, path):
    context, page, problems = open_page(browser, served, path)
    try:
        assert page.title(), f"{path}: no title"
        assert not problems["offsite"], f"{path} requested other hosts (the site must work offline): {problems['offsite']}"
        assert not problems["failed"], f"{path}: requests failed: {problems['failed']}"
        assert not problems["console"], f"{path}: console errors: {problems['console']}"

        images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])")
        broken = [src for src, width, height in images if not (width > 0 and height > 0)]
        assert not broken, f"{path}: images that did not load: {broken}"
        if path.startswith("notebooks/"):
            assert images, f"{path}: a lecture with no figure (the stored PNG outputs are missing)"

        if _markdown_has_math(path):
            sources = page.locator(".math").count()
            typeset = page.locator(".math mjx-container").count()
            assert sources > 0, f"{path}: the source has $…$ math but the page has none (is dollarmath on?)"
            assert typeset == sources, f"{path}: MathJax typeset {typeset} of {sources} formulas"
            assert page.locator("mjx-merror").count() == 0, f"{path}: MathJax reports a TeX error"

        # A traceback stored in a lecture is a failed run, not a lesson (unless the cell says it raises).
        errors = page.locator(".cell:not(.tag_raises-exception) .output.traceback").all_inner_texts()
        assert not errors, f"{path} shows a stored error output; re-execute the notebook: {errors[0][-300:]}"

        text = page.inner_text("body")
        leaked = [line for line in _solution_lines() if line in text]
        assert not leaked, f"{path} shows the instructor's solution lines: {leaked[:3]}"

        if path in ("index.html", SCREENSHOT_NOTEBOOK):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = Path(path).stem
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
            if path == SCREENSHOT_NOTEBOOK:  # also a figure and the formulas around it
                page.locator(".cell_output img").first.scroll_into_view_if_needed()
                page.screenshot(path=str(SCREENSHOTS / f"{name}-figure.png"))
    finally:
        context.close()


def test_no_page_links_a_script_style_or_image_from_another_host(site):
    """What the browser test cannot see (a resource a click would load) is read from the HTML."""
    remote = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)
    offenders = [str(p.relative_to(site)) for p in site.rglob("*.html") if remote.search(p.read_text())]
    assert not offenders, f"pages that load from another host: {offenders}"


def test_the_site_has_the_lectures_the_homework_stubs_and_no_solutions(site):
    assert sorted(p.name for p in (site / "notebooks").glob("*.html")) == \
        sorted(f"{p.stem}.html" for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in (site / "homework").glob("*.html")) == \
        sorted(f"{p.stem}.html" for p in (ROOT / "exercises").glob("*.ipynb"))
    assert not list(site.rglob("*solution*")), "the site holds a file named after the solutions"
    assert "notebooks/01_llm_as_policy.html" in (site / "index.html").read_text()
