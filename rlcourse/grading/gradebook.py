"""The gradebook (one CSV for a course, merged and written atomically) and each student's feedback file.

Columns: student, exercise, points, max, status, reason, sha256, seed, grader_version, isolation
(``isolation`` came last, so readers of the older columns keep working). Feedback is Markdown:
points, what the grader found and a hint per exercise, and for a wrong value the smallest hidden case
that failed (its inputs, expected vs received where they differ, the tolerance); never the reference's code.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rlcourse.grading import spec

# `isolation` came last, so readers of the older columns keep working
GRADEBOOK_COLUMNS = ["student", "exercise", "points", "max", "status", "reason", "sha256", "seed", "grader_version",
                     "isolation"]


@dataclass
class Row:
    """One gradebook row: one exercise of one student."""

    student: str
    exercise: str
    points: float
    max: float
    status: str  # "ok" | "wrong" | "error" | "missing" | "flagged" | "timeout" | "crashed" | "output-limit" | "invalid"
    # | "memory-limit" | "process-limit" | "cpu-limit"
    reason: str
    sha256: str
    seed: int
    grader_version: str
    isolation: str  # sandbox.ISOLATION, or sandbox.NO_ISOLATION under --no-sandbox


def feedback_markdown(student: str, rows: list[Row], notes: dict[str, str], problem: str,
                      details: dict[str, list[str]] | None = None) -> str:
    """One student's feedback: total, then per exercise points, status, reason and a hint; then, for a wrong
    value, the smallest hidden case that failed (``details``: Markdown lines per exercise). Never the reference."""
    total, maximum = sum(r.points for r in rows), sum(r.max for r in rows)
    lines = [f"# Feedback for {student}", "", f"**Total: {total:g} / {maximum:g} points**", ""]
    if problem:
        lines += [f"Your file could not be graded: {problem}.", ""]
    lines += ["| exercise | points | status | what the grader found |", "|---|---|---|---|"]
    for r in rows:
        reason = r.reason + (f" ({notes[r.exercise]})" if r.exercise in notes else "")
        lines.append(f"| {r.exercise} | {r.points:g} / {r.max:g} | {r.status} | {_cell_text(reason)} |")
    if details:
        lines += ["", "## What went wrong", ""]
        for ex, block in details.items():
            lines += [f"**{ex}**", ""] + block + [""]
        lines.pop()
    hints = [(r.exercise, hint_for(r)) for r in rows if hint_for(r)]
    if hints:
        lines += ["", "## Hints", ""] + [f"- **{ex}**: {hint}" for ex, hint in hints]
    return "\n".join(lines) + "\n"


def _cell_text(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "/")


def hint_for(row: Row) -> str:
    """The exercise's hint when the student lost points on it ("" otherwise, and for a file that was no notebook)."""
    return spec.exercise(row.exercise).hint if row.points < row.max and row.status != "invalid" else ""


def read_gradebook(path: Path) -> list[dict]:
    """The rows of an existing gradebook (an empty list when there is none)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        first = GRADEBOOK_COLUMNS[:9]  # a gradebook from before the `isolation` column is read too
        if reader.fieldnames is None or reader.fieldnames[: len(first)] != first:
            raise ValueError(f"{path} exists but is not a gradebook (its columns are {reader.fieldnames}); "
                             "move it away or pass another --out folder.")
        return list(reader)


def write_gradebook(path: Path, rows: list[dict]) -> None:
    """Merge ``rows`` into the gradebook at ``path`` (a new grade replaces the old one of the same student
    and exercise; every other row is kept), written to a temporary file and renamed."""
    merged = {(r["student"], r["exercise"]): r for r in read_gradebook(path)}
    merged.update({(r["student"], r["exercise"]): r for r in rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=GRADEBOOK_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for key in sorted(merged):
        writer.writerow(merged[key])
    fd, tmp = tempfile.mkstemp(prefix=".gradebook-", suffix=".csv", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


__all__ = ["GRADEBOOK_COLUMNS", "Row", "feedback_markdown", "hint_for", "read_gradebook", "write_gradebook", "write_text_atomic"]
