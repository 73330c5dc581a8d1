"""Reading submissions: the instructor's template, and a student's file checked and reduced to answers.

A submission is validated with ``nbformat`` (not JSON, truncated, not nbformat 4 or not a valid
notebook: one reason, every exercise 0). Only the student's answer cells are taken, matched by
``metadata["rlcourse"]["exercise"]`` or, failing that, by the released exercise cell's id;
everything else the student sent (other cells, tags, metadata, outputs, edited check cells) is
dropped. A deleted answer scores 0; a duplicated one is noted and its last copy graded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from rlcourse.grading import kinds, spec
from rlcourse.grading.build import answer_cells

MAX_NOTEBOOK_BYTES = 20_000_000


@dataclass
class Template:
    """The instructor's notebook: its cells and graded exercises (id -> points)."""

    path: Path
    nb: nbformat.NotebookNode
    points: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Template":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"the assignment {path} does not exist; pass a solution notebook, e.g. solutions/hw1_policy.ipynb.")
        nb = nbformat.read(path, as_version=4)
        points = {}
        for exercise_id, cells in answer_cells(nb).items():
            kinds.kind_of(spec.exercise(exercise_id))  # unknown ids and kinds fail loudly
            if len(cells) != 1:
                raise ValueError(f"the assignment {path} has {len(cells)} answer cells for {exercise_id}; it needs exactly one.")
            points[exercise_id] = float(nb.cells[cells[0]].metadata["rlcourse"].get("points", 1))
        if not points:
            raise ValueError(f"the assignment {path} has no answer cells (metadata rlcourse.role == 'answer'); "
                             "pass a solution notebook from solutions/.")
        return cls(path, nb, points)


def read_submission(data: bytes) -> tuple[nbformat.NotebookNode | None, str]:
    """``(notebook, "")`` or ``(None, reason)`` for a file that is not a valid nbformat-4 notebook."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, f"the file is {len(data) / 1e6:.0f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB limit; clear outputs and resubmit"
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the file is not UTF-8 text, so not a notebook; submit the .ipynb saved by Jupyter"
    except json.JSONDecodeError as err:
        return None, (f"the file is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); it may be "
                      "truncated or damaged: save it again in Jupyter and resubmit")
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, "the file is JSON but not a notebook (no 'nbformat' field); submit the .ipynb saved by Jupyter"
    if raw.get("nbformat") != 4:
        return None, (f"the notebook is nbformat version {raw.get('nbformat')}, expected 4; open it in a current "
                      "Jupyter and save it, or convert it with `jupyter nbconvert --to notebook`")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - nbformat raises several types
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        return None, f"the notebook does not follow nbformat 4 ({first}); save it again in Jupyter and resubmit"
    return nb, ""


def student_answers(nb: nbformat.NotebookNode, template: Template) -> tuple[dict[str, str], dict[str, str]]:
    """``(exercise -> answer source, exercise -> note)`` from a student's notebook.

    Matched by the ``rlcourse`` metadata, else by the released cell's id. A duplicate is
    noted and its last copy kept.
    """
    found = _answer_cells(nb, template)
    answers = {ex: cells[-1][1] for ex, cells in found.items()}
    notes = {ex: f"{len(cells)} answer cells for this exercise; the last one was graded"
             for ex, cells in found.items() if len(cells) > 1}
    return answers, notes


def answer_cell_numbers(nb: nbformat.NotebookNode, template: Template) -> dict[str, int]:
    """Exercise -> the number of its graded answer cell in the student's notebook (1 = the first cell,
    Markdown cells counted), so feedback can say which cell to look at."""
    return {ex: cells[-1][0] for ex, cells in _answer_cells(nb, template).items()}


def _answer_cells(nb: nbformat.NotebookNode, template: Template) -> dict[str, list[tuple[int, str]]]:
    """Exercise -> its answer cells ``(cell number, source)`` in order, by metadata or else by the released cell's id."""
    by_meta: dict[str, list[tuple[int, str]]] = {}
    by_id: dict[str, list[tuple[int, str]]] = {}
    template_ids = {template.nb.cells[i].get("id"): ex for ex, cells in answer_cells(template.nb).items() for i in cells}
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("rlcourse")
        if isinstance(meta, dict) and meta.get("role") == "answer" and meta.get("exercise") in template.points:
            by_meta.setdefault(meta["exercise"], []).append((number, cell.source))
        elif cell.get("id") in template_ids:
            by_id.setdefault(template_ids[cell["id"]], []).append((number, cell.source))
    return {ex: by_meta.get(ex) or by_id[ex] for ex in template.points if by_meta.get(ex) or by_id.get(ex)}


def collect_submissions(paths: list[str | Path]) -> list[Path]:
    """Submission files from files and folders (a folder's ``*.ipynb``); one clear sentence on a problem."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.glob("*.ipynb") if q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise ValueError(f"{p} is neither a notebook file nor a folder; pass submission .ipynb files or a folder of them.")
    if not found:
        raise ValueError("no submissions found; pass .ipynb files or a folder that holds them.")
    stems = [p.stem for p in found]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ValueError(f"two submissions share the student name {duplicates[0]!r} (the file name without .ipynb); rename one.")
    return found


__all__ = ["Template", "read_submission", "student_answers", "answer_cell_numbers", "collect_submissions", "MAX_NOTEBOOK_BYTES"]
