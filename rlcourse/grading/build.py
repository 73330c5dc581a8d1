"""``rlcourse build-exercises``: the student notebooks, generated from the solution notebooks.

A solution notebook marks each answer with ``### BEGIN SOLUTION`` / ``### END SOLUTION``
lines (inside a function body) and tags its cells in ``cell.metadata["rlcourse"]``::

    {"exercise": "hw1.token_logprobs", "role": "answer", "points": 2}   # the student edits this cell
    {"exercise": "hw1.token_logprobs", "role": "check"}                 # runs the public checks

The exercise version replaces every region by a stub that raises ``NotImplementedError``
(indented like the region), clears outputs and execution counts, and keeps everything else,
so ``exercises/`` is a pure function of ``solutions/`` (a test regenerates it and compares).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("replace this line with your code")'
ROLES = ("answer", "check", "given")


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace each BEGIN/END SOLUTION region of ``source`` by an indented ``raise NotImplementedError``."""
    out, inside, indent = [], False, ""
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: line {number} opens a solution region inside another; close it with {END!r}.")
            inside, indent = True, re.match(r"\s*", line).group(0)
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}{STUB}")
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: line {number} closes a solution region that was never opened with {BEGIN!r}.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: a solution region is never closed; add a {END!r} line.")
    return "\n".join(out)


def exercise_notebook(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student version of one solution notebook (a new object; the input is unchanged)."""
    nb = nbformat.from_dict(nbformat.reads(nbformat.writes(solution), as_version=4))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{name} cell {index}"
        cell.source = strip_solutions(cell.source, where)
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def answer_cells(nb: nbformat.NotebookNode) -> dict[str, list[int]]:
    """Exercise id -> indices of the cells tagged as its answer (normally one)."""
    found: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("rlcourse")
        if isinstance(meta, dict) and meta.get("role") == "answer" and isinstance(meta.get("exercise"), str):
            found.setdefault(meta["exercise"], []).append(index)
    return found


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text build-exercises writes (what the staleness test compares)."""
    return nbformat.writes(nb) + "\n"


def build_exercises(solutions_dir: Path, exercises_dir: Path) -> list[Path]:
    """Write ``exercises_dir/NAME.ipynb`` for every ``solutions_dir/NAME.ipynb``; return the written paths."""
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    sources = sorted(solutions_dir.glob("*.ipynb"))
    if not sources:
        raise ValueError(f"no solution notebooks (*.ipynb) in {solutions_dir}; pass the folder that holds them.")
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        text = render(exercise_notebook(nbformat.read(path, as_version=4), path.name))
        target = exercises_dir / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            tmp = target.with_suffix(".ipynb.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
        written.append(target)
    return written
