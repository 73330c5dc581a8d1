"""The instructor's view of the class: ``summary.md`` and ``scores.png`` next to the gradebook.

Read from the whole gradebook (every student graded so far, not only the last run), per exercise:
the mean points, how many students got full, partial and zero points, and the most common
failure reasons; per student the total, whose distribution is the figure. A failure reason is
the row's status and the first clause of its reason with numbers blanked (``wrong: hidden case N:
values off``), so that the same mistake made on different hidden cases counts once.

Example (two students, one exercise)::

    | exercise | mean points | full | partial | zero | most common failure reasons |
    | hw3.gae | 1.5 / 3 | 1 | 0 | 1 | wrong: hidden case N: values off (1) |
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TOP_REASONS = 3  # failure reasons listed per exercise
SUMMARY_FILE, FIGURE_FILE = "summary.md", "scores.png"


@dataclass
class ExerciseSummary:
    """One exercise over the class."""

    exercise: str
    max: float  # its points
    students: int = 0
    total: float = 0.0  # points summed over students
    full: int = 0  # students with all its points
    partial: int = 0  # with some
    zero: int = 0  # with none
    reasons: Counter = field(default_factory=Counter)  # failure reason -> students

    @property
    def mean(self) -> float:
        return self.total / self.students if self.students else 0.0


def failure_reason(status: str, reason: str) -> str:
    """A row's failure reason, grouped: its status and the reason's first clause (parenthesised remarks
    dropped; a ``hidden case N:`` or ``stopped:`` prefix kept with the clause after it), numbers as N.

    Example:
        >>> failure_reason("wrong", "hidden case 2: values off (output 1): largest error 0.001 (1 of 3 hidden cases failed)")
        'wrong: hidden case N: values off'
        >>> failure_reason("timeout", "stopped after 60 s in your answer cell: look for an endless loop")
        'timeout: stopped after N s in your answer cell'
    """
    text = re.sub(r" \([^()]*\)", "", reason).split("; ")[0]
    parts = text.split(": ")
    keep = 1
    while keep < len(parts) and (parts[keep - 1].startswith("hidden case") or parts[keep - 1] == "stopped"):
        keep += 1
    clause = re.sub(r"\d+(?:\.\d+)?(?:e-?\d+)?", "N", ": ".join(parts[:keep])).strip()
    return f"{status}: {clause}" if clause else status


def summarize(rows: list[dict]) -> dict[str, ExerciseSummary]:
    """Exercise -> its :class:`ExerciseSummary`, from gradebook rows (dicts of strings or numbers)."""
    result: dict[str, ExerciseSummary] = {}
    for row in rows:
        points, most = float(row["points"]), float(row["max"])
        s = result.setdefault(row["exercise"], ExerciseSummary(row["exercise"], most))
        s.students += 1
        s.total += points
        if points >= most:
            s.full += 1
            continue
        if points > 0:
            s.partial += 1
        else:
            s.zero += 1
        s.reasons[failure_reason(row["status"], row["reason"])] += 1
    return dict(sorted(result.items()))


def student_totals(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """Student -> (points, max points) over the exercises they were graded on."""
    totals: dict[str, tuple[float, float]] = {}
    for row in rows:
        points, most = totals.get(row["student"], (0.0, 0.0))
        totals[row["student"]] = (points + float(row["points"]), most + float(row["max"]))
    return totals


def summary_markdown(rows: list[dict]) -> str:
    """The class summary as Markdown: a table per exercise, then the totals."""
    lines = ["# Class summary", ""]
    totals = student_totals(rows)
    if not totals:
        return "\n".join(lines + ["No graded submissions yet."]) + "\n"
    shares = sorted(p / m if m else 0.0 for p, m in totals.values())
    lines += [f"{len(totals)} student{'s' if len(totals) > 1 else ''}; mean total {100 * sum(shares) / len(shares):.0f}% of the points, median "
              f"{100 * shares[len(shares) // 2]:.0f}%. Figure: [{FIGURE_FILE}]({FIGURE_FILE}).", "",
              "| exercise | mean points | full | partial | zero | most common failure reasons |",
              "|---|---|---|---|---|---|"]
    for s in summarize(rows).values():
        reasons = "; ".join(f"{r} ({n})" for r, n in s.reasons.most_common(TOP_REASONS)) or "-"
        lines.append(f"| {s.exercise} | {s.mean:.2f} / {s.max:g} | {s.full} | {s.partial} | {s.zero} | "
                     f"{reasons.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def score_figure(rows: list[dict], path: Path) -> None:
    """A histogram of the students' totals (percent of the points), written as a PNG (Agg, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shares = [100 * p / m if m else 0.0 for p, m in student_totals(rows).values()]
    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(shares, bins=[10 * i for i in range(11)], color="tab:blue", edgecolor="white")
    ax.set_title(f"Total scores of {len(shares)} students")
    ax.set_xlabel("total score (% of the points)")
    ax.set_ylabel("students")
    fig.tight_layout()
    fig.savefig(path)


def write_summary(gradebook: Path) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``scores.png`` next to ``gradebook`` from all its rows; return their paths."""
    from rlcourse.grading.gradebook import read_gradebook, write_text_atomic

    rows = read_gradebook(gradebook)
    markdown, figure = gradebook.parent / SUMMARY_FILE, gradebook.parent / FIGURE_FILE
    write_text_atomic(markdown, summary_markdown(rows))
    score_figure(rows, figure)
    return markdown, figure


__all__ = ["ExerciseSummary", "failure_reason", "summarize", "student_totals", "summary_markdown", "score_figure",
           "write_summary"]
