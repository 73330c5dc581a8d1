"""Build the course website (`make site`): static HTML in build/site, from the stored outputs.

    .venv/bin/python docs/site/build.py [OUT]        # OUT defaults to build/site

Stages a source folder (build/site-src) from this folder's pages, the lecture notebooks
(notebooks/*.ipynb, so a new lecture needs no change here) and the homework stubs
(exercises/*.ipynb; solutions/ is never read), then runs Sphinx with warnings as errors.
Nothing is executed: the notebooks keep the outputs stored in git. Widget outputs become their
text form with a note (a static page has no kernel); MathJax is copied into the site, so the
pages need no network. Why Sphinx + MyST-NB: about.md.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# site folder <- repository folder; the lecture pages keep their file names (01_llm_as_policy.html ...)
NOTEBOOK_FOLDERS = {"notebooks": "notebooks", "homework": "exercises"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROGRESS_BAR = re.compile(r"\d+%\|")  # tqdm's text form: "PPO: 100%|##########| 50/50 [...]"
# The parts of MathJax 3 the pages load: the TeX-to-CommonHTML bundle, its fonts, the TeX
# extensions it loads on demand, and the menu's accessibility tools (loaded when a reader asks).
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml", "input/tex", "a11y", "sre", "ui")


def widget_note(text: str) -> str:
    """The HTML shown instead of a widget: a note, then the widget's own text form."""
    if PROGRESS_BAR.search(text):
        note = "A live progress bar in JupyterLab; its final state:"
    else:
        note = ("Interactive: run this notebook in JupyterLab (<code>make lab</code>) to use this widget. "
                "Its text form:")
    return f'<div class="rlcourse-widget-note">{note}</div>\n<pre>{html.escape(text)}</pre>\n'


def static_notebook(src: Path) -> dict:
    """The notebook ``src`` with each widget output replaced by its text form and a note, and
    the saved widget state dropped (the page loads no widget JavaScript)."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                text = data.get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
                output["data"] = {"text/html": widget_note(text.rstrip("\n"))}
    return nb


def stage(src_dir: Path) -> None:
    """Lay out the Sphinx source folder: pages, README (included by them), notebooks, MathJax."""
    if src_dir.exists():
        shutil.rmtree(src_dir)
    shutil.copytree(HERE, src_dir, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    shutil.copy2(ROOT / "README.md", src_dir / "README.md")
    for site_folder, repo_folder in NOTEBOOK_FOLDERS.items():
        (src_dir / site_folder).mkdir()
        for path in sorted((ROOT / repo_folder).glob("*.ipynb")):
            (src_dir / site_folder / path.name).write_text(json.dumps(static_notebook(path), indent=1),
                                                           encoding="utf-8")
    mathjax = Path(distribution("sphinx-mathjax-offline").locate_file("sphinx-mathjax-offline/static/mathjax"))
    for part in MATHJAX_PARTS:
        src, dst = mathjax / part, src_dir / "_static" / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def build(out: Path = ROOT / "build" / "site") -> Path:
    """Build the site into ``out`` from scratch (a fresh Sphinx environment, so every warning is
    seen again) and return ``out``; raise one sentence with Sphinx's last lines when it fails."""
    out = Path(out).resolve()
    work = out.parent / f"{out.name}-src"
    stage(work)
    if out.exists():
        shutil.rmtree(out)
    # the checkout first on the path: autodoc documents this package, not another installed copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-E", "-q",
                             "-d", str(out.parent / f"{out.name}-doctrees"), str(work), str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build failed (exit {result.returncode}); fix these warnings:\n"
                           f"{(result.stdout + result.stderr).strip()[-4000:]}")
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "build" / "site"
    start = time.monotonic()
    try:
        build(out)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"built {out}/index.html in {time.monotonic() - start:.0f} s; publish it by copying {out} to any static host")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
