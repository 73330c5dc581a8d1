"""Every lecture and homework notebook's first cell says, in one sentence, how to get the course package when it is
missing (a hosted notebook, a pip user's fresh kernel) instead of failing on a bare import (issue 16)."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("hw*.ipynb")) + \
    sorted((ROOT / "exercises").glob("hw*.ipynb"))


def _first_code_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def _guard(source: str) -> str:
    """The leading try/except block of a first cell (up to the first blank line)."""
    return source.split("\n\n", 1)[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_starts_with_the_install_guard(path):
    guard = _guard(_first_code_cell(path))
    assert guard.startswith("try:") and "import rlcourse" in guard and "except ModuleNotFoundError" in guard


def test_the_guard_tells_what_to_do_when_the_package_is_missing():
    guard = _guard(_first_code_cell(NOTEBOOKS[0]))
    assert all(_guard(_first_code_cell(p)) == guard for p in NOTEBOOKS)  # one wording everywhere
    # -S: no site-packages, so rlcourse cannot be found, as in a kernel where it was never installed
    run = subprocess.run([sys.executable, "-I", "-S", "-c", guard], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: this notebook needs the course package rlcourse ('rlcourse' is missing)")
    assert "pip install" in last and "make lab" in last and "restart the kernel" in last
