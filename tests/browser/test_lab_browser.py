"""The course as a student meets it: JupyterLab in a real (headless) Chromium.

Starts JupyterLab on a free localhost port with a token, serving a COPY of the notebooks
with their outputs and widget state removed (so every widget seen here was drawn by the
live kernel, and autosave never touches the sources), opens notebook 01 in Debian's
chromium driven by Playwright, runs the setup, sampling-explorer and quiz cells, and
checks that the widgets are there and react. Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from rlcourse.classroom import quizbank

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "rlcourse-browser-test"
TIMEOUT_MS = 60_000  # per wait; the machine is shared and bursts can be slow

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_copy(src: Path, dst: Path) -> nbformat.NotebookNode:
    """Copy a notebook without outputs, execution counts or saved widget state."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return nb


def _exercise_cell(nb: nbformat.NotebookNode, exercise: str, role: str) -> int:
    """Index of the cell of ``exercise`` with ``role`` ("answer" or "check") in a homework notebook."""
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("rlcourse", {})
        if meta.get("exercise") == exercise and meta.get("role") == role:
            return i
    raise AssertionError(f"no {role} cell for {exercise!r}; the browser test needs updating")


def _cell_index(nb: nbformat.NotebookNode, needle: str) -> int:
    """Index (among all cells, as JupyterLab lays them out) of the first code cell containing ``needle``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and needle in cell.source:
            return i
    raise AssertionError(f"no code cell contains {needle!r}; the browser test needs updating")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """JupyterLab serving a clean copy of notebooks/ (and exercises/ when present)."""
    root = tmp_path_factory.mktemp("lab-root")
    state = tmp_path_factory.mktemp("lab-state")
    notebooks = {}
    for folder in ("notebooks", "exercises"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            notebooks[f"{folder}/{path.name}"] = _clean_copy(path, root / folder / path.name)
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update checks: the test machine is offline and the toast would cover cells.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTER_CONFIG_DIR": str(state / "config")}
    port = _free_port()
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = (state / "lab.log").open("w")
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # wait until the server answers (a condition, polled; not a fixed sleep)
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log: {(state / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield base, notebooks
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def page(browser, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        page.screenshot(path=str(tmp_path / "last_page.png"))  # what the page showed at the end (or failure)
        print(f"screenshot: {tmp_path / 'last_page.png'}")
        context.close()


def open_notebook(page, base: str, path: str):
    """Open a notebook in JupyterLab and wait until its kernel has started and is idle.

    The status bar reads "No Kernel | Idle" before the kernel exists (a cell run then
    would open the "Select Kernel" dialog), so wait for a kernel's name with "Idle".
    """
    # A workspace of its own, so tabs restored from an earlier test do not hide this one.
    page.goto(f"{base}/lab/workspaces/{Path(path).stem}/tree/{path}?token={TOKEN}")
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
    assert page.locator(".jp-NotebookPanel").count() == 1, "another notebook tab is open"
    status = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"^(?!No Kernel).+ \| Idle$"))
    status.wait_for()
    return page.locator(".jp-NotebookPanel .jp-Notebook")


def run_cell(page, notebook, index: int, count: int):
    """Click cell ``index``, press Shift+Enter as a student would, and wait for prompt [count]."""
    from playwright.sync_api import expect

    cell = notebook.locator(".jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text(re.compile(rf"\[{count}\]"))
    outputs = cell.locator(".jp-OutputArea-output").all_inner_texts()
    assert not any("Traceback" in text for text in outputs), f"cell {index} raised:\n" + "\n".join(outputs)
    return cell


def test_notebook_01_widgets_render_and_react(served, page, tmp_path):
    from playwright.sync_api import expect

    base, notebooks = served
    nb = notebooks["notebooks/01_llm_as_policy.ipynb"]
    notebook = open_notebook(page, base, "notebooks/01_llm_as_policy.ipynb")

    run_cell(page, notebook, _cell_index(nb, "rlcourse.setup("), 1)

    # The sampling explorer: a prompt dropdown, two sliders, the next-token bars and 4 samples.
    explorer = run_cell(page, notebook, _cell_index(nb, "SamplingExplorer(model"), 2)
    sliders = explorer.locator(".widget-slider")
    expect(sliders).to_have_count(2)
    expect(explorer.locator(".widget-dropdown select")).to_have_value(re.compile(".+"))
    expect(explorer.get_by_text("π(next token | prompt)")).to_be_visible()
    samples = explorer.locator("ol.samples li")
    expect(samples).to_have_count(4)
    before = samples.all_inner_texts()
    readout = sliders.first.locator(".widget-readout")
    expect(readout).to_have_text("1.00")

    # Drag the temperature handle to the far left (T = 0: greedy) with the mouse.
    # hover() scrolls the handle into view and waits until it stops moving; the boxes are read after.
    handle = sliders.first.locator(".noUi-handle")
    handle.hover()
    page.mouse.down()
    track, box = sliders.first.locator(".noUi-target").bounding_box(), handle.bounding_box()
    page.mouse.move(track["x"] - 20, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    expect(readout).to_have_text("0.00")
    expect(samples.first).not_to_have_text(before[0])  # the kernel resampled
    after = samples.all_inner_texts()
    assert after != before
    assert len(set(after)) == 1, f"greedy decoding (T = 0) should give 4 identical samples, got {after}"
    shot = tmp_path / "01_sampling_explorer.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")

    # The quiz: a wrong answer says "Try again", the right one "Correct" and the score moves.
    # The notebook shows no answer; the test reads it from the instructor's plain-text source.
    first = quizbank.load_source(ROOT / "solutions" / "quizzes.py")["01"]["questions"][0]
    wrong = next(option for option in first["options"] if option != first["answer"])
    quiz = run_cell(page, notebook, _cell_index(nb, 'lecture_quiz("01")'), 3)
    expect(quiz.get_by_text("0 / 3 correct")).to_be_visible()
    first_check = quiz.get_by_role("button", name="Check").first
    quiz.get_by_text(wrong, exact=True).click()
    first_check.click()
    expect(quiz).to_contain_text("Try again")
    quiz.get_by_text(first["answer"], exact=True).click()
    first_check.click()
    expect(quiz).to_contain_text("Correct")
    expect(quiz).not_to_contain_text("Try again")
    expect(quiz.get_by_text("1 / 3 correct")).to_be_visible()
    shot = tmp_path / "01_quiz.png"
    quiz.scroll_into_view_if_needed()
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")


def test_homework_check_cell_prints_its_verdict(served, page, tmp_path):
    """A student runs the stub and its check ("not implemented yet"), types an answer, checks again ("pass")."""
    from playwright.sync_api import expect

    base, notebooks = served
    nb = notebooks["exercises/hw1_policy.ipynb"]
    notebook = open_notebook(page, base, "exercises/hw1_policy.ipynb")
    run_cell(page, notebook, _cell_index(nb, "rlcourse.setup("), 1)
    answer, check = _exercise_cell(nb, "hw1.token_logprobs", "answer"), _exercise_cell(nb, "hw1.token_logprobs", "check")
    run_cell(page, notebook, answer, 2)
    verdict = run_cell(page, notebook, check, 3).locator(".jp-OutputArea-output")
    expect(verdict).to_have_text(re.compile(r"^hw1\.token_logprobs: not implemented yet"))

    # Type an answer over the stub (insert_text: no auto-indent or auto-closed brackets).
    editor = notebook.locator(".jp-Cell").nth(answer).locator(".jp-InputArea-editor .cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text("def token_logprobs(logits, labels):\n"
                              "    return torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)\n")
    run_cell(page, notebook, answer, 4)
    run_cell(page, notebook, check, 5)
    expect(verdict).to_have_text(re.compile(r"^hw1\.token_logprobs: pass"))
    shot = tmp_path / "hw1_check.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
