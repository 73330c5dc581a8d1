"""Feedback a student can act on, the instructor's class summary, and re-grading one student.

The graded submissions are hw3's (no model to load: fast kernels). Expected values are computed
here, from the package's reference on the hidden cases drawn from the same seed, never read
back from what the grader printed.
"""

from __future__ import annotations

import csv
import inspect
import re

import pytest
import torch

from rlcourse.rl import advantages
from rlcourse.grading import spec
from test_grading import CORRECT_QUIZ, FAST, HW3, SEED, grade_files, grades_of, solution_source, submit

RAISING_CELL = '''raise ValueError("the cell stops here: x is 42")

def discounted_returns(rewards, mask, gamma):
    return rewards'''

OFF_BY_A_LITTLE = solution_source("hw3.gae") + '''

_right_gae = gae


def gae(rewards, values, mask, gamma, lam):
    advantages, returns = _right_gae(rewards, values, mask, gamma, lam)
    return advantages + 0.5, returns  # the advantages off by 0.5 everywhere'''


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """One submission: an answer cell that raises before defining its function, GAE's advantages off by 0.5,
    two right answers. Returns (rows, feedback text, grades folder)."""
    tmp_path = tmp_path_factory.mktemp("feedback")
    path = submit(tmp_path, "learner", {"hw3.discounted_returns": RAISING_CELL, "hw3.gae": OFF_BY_A_LITTLE,
                                        "hw3.kl_penalized_rewards": solution_source("hw3.kl_penalized_rewards"),
                                        "hw3.quiz": CORRECT_QUIZ})
    rows = grade_files(tmp_path, [path])
    return rows, (tmp_path / "grades" / "feedback" / "learner.md").read_text(), tmp_path / "grades"


def test_a_raising_answer_cell_is_named_with_its_exception(learner):
    rows, feedback, _ = learner
    assert grades_of(rows, "learner")["hw3.discounted_returns"] == (0.0, "wrong")
    line = next(x for x in feedback.splitlines() if x.startswith("| hw3.discounted_returns"))
    assert "ValueError: the cell stops here: x is 42" in line  # the exception's last line
    assert re.search(r"answer cell \(cell \d+ of your notebook\)", line)  # which cell
    assert "fix" in line  # and what to do


def test_a_wrong_value_shows_where_it_differs_and_never_the_reference(learner):
    rows, feedback, _ = learner
    assert grades_of(rows, "learner")["hw3.gae"] == (0.0, "wrong")
    section = feedback.split("**hw3.gae**")[1].split("## Hints")[0]
    shown = int(re.search(r"hidden case (\d+), inputs:", section).group(1))
    assert "output 1 differs" in section and "output 2 differs" not in section
    ex = spec.exercise("hw3.gae")
    cases = spec.draw_cases(ex, SEED, public=False)  # the hidden cases, drawn here from the grader's seed
    case = cases[shown - 1]
    assert shown - 1 == min(range(len(cases)), key=lambda i: (sum(v.numel() if torch.is_tensor(v) else 1
                                                                    for v in cases[i].values()), i))  # the smallest
    expected, _ = advantages.gae(**{k: (v.clone() if torch.is_tensor(v) else v) for k, v in case.items()})
    positions = re.findall(r"at \[(\d+), (\d+)\]: expected (\S+), received (\S+)", section)
    assert 1 <= len(positions) <= 3, section
    for b, t, want, got in positions:
        value = float(expected[int(b), int(t)])
        assert float(want) == pytest.approx(value, rel=1e-5, abs=1e-6)
        assert float(got) == pytest.approx(value + 0.5, rel=1e-5, abs=1e-6)
    assert f"{ex.atol:g} + {ex.rtol:g} × |expected|" in section  # the tolerance used
    assert f"`gamma` = `{case['gamma']!r}`" in section  # the failing input, readable
    # no line of the reference's code, nor of the solution's answer, reaches the student
    code = inspect.getsource(advantages.gae).splitlines() + solution_source("hw3.gae").splitlines()
    for line in code:
        line = line.strip()
        if len(line) > 12 and not line.startswith(("#", '"""', "Args", "Returns", "def gae")):
            assert line not in feedback, line


def test_right_answers_next_to_wrong_ones_keep_full_marks(learner):
    grades = grades_of(learner[0], "learner")
    assert grades["hw3.kl_penalized_rewards"] == (2.0, "ok") and grades["hw3.quiz"] == (3.0, "ok")


# ----------------------------------------------------------------------------- the instructor's summary


def _row(student, exercise, points, most, status, reason):
    return {"student": student, "exercise": exercise, "points": str(points), "max": str(most), "status": status,
            "reason": reason, "sha256": "0" * 64, "seed": "1", "grader_version": "1.0", "isolation": ""}


HAND_BUILT = [
    _row("ann", "hw3.gae", 3.0, 3.0, "ok", "all 3 hidden cases match the reference"),
    _row("bob", "hw3.gae", 0.0, 3.0, "wrong", "hidden case 2: values off: largest error 0.5 (3 of 3 hidden cases failed)"),
    _row("cy", "hw3.gae", 0.0, 3.0, "wrong", "hidden case 1: values off: largest error 2 (1 of 3 hidden cases failed)"),
    _row("dee", "hw3.gae", 0.0, 3.0, "timeout", "stopped after 60 s in your answer cell: look for an endless loop"),
    _row("ann", "hw3.quiz", 3.0, 3.0, "ok", "3 of 3 questions right"),
    _row("bob", "hw3.quiz", 2.0, 3.0, "wrong", "2 of 3 questions right"),
    _row("cy", "hw3.quiz", 1.0, 3.0, "wrong", "1 of 3 questions right"),
    _row("dee", "hw3.quiz", 0.0, 3.0, "not-implemented", "not implemented yet"),
]


def test_class_summary_numbers_match_a_hand_built_gradebook(tmp_path):
    from rlcourse.grading import gradebook, summary

    book = tmp_path / "gradebook.csv"
    gradebook.write_gradebook(book, HAND_BUILT)
    markdown_path, figure = summary.write_summary(book)
    per = summary.summarize(gradebook.read_gradebook(book))
    gae, quiz = per["hw3.gae"], per["hw3.quiz"]
    assert (gae.students, gae.mean, gae.full, gae.partial, gae.zero) == (4, 0.75, 1, 0, 3)
    assert (quiz.students, quiz.mean, quiz.full, quiz.partial, quiz.zero) == (4, 1.5, 1, 2, 1)
    assert gae.reasons.most_common() == [("wrong: hidden case N: values off", 2),
                                         ("timeout: stopped after N s in your answer cell", 1)]
    markdown = markdown_path.read_text()
    assert "| hw3.gae | 0.75 / 3 | 1 | 0 | 3 | wrong: hidden case N: values off (2); timeout: stopped after N s" in markdown
    assert "| hw3.quiz | 1.50 / 3 | 1 | 2 | 1 |" in markdown
    assert "4 students; mean total 38% of the points" in markdown  # (6 + 2 + 1 + 0) / 24 = 37.5%
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- --only


def test_only_regrades_one_student_and_leaves_other_rows_byte_identical(tmp_path):
    from rlcourse import cli

    solved = {ex: solution_source(ex) for ex in ("hw3.discounted_returns", "hw3.kl_penalized_rewards", "hw3.gae")}
    first = submit(tmp_path, "ann", {**solved, "hw3.quiz": CORRECT_QUIZ})
    submit(tmp_path, "bob", {})  # nothing done yet
    grade_files(tmp_path, [first.parent], limits=FAST)
    book = tmp_path / "grades" / "gradebook.csv"
    before = book.read_bytes().decode().splitlines(keepends=True)
    ann_feedback = (tmp_path / "grades" / "feedback" / "ann.md").read_bytes()
    submit(tmp_path, "bob", {**solved, "hw3.quiz": CORRECT_QUIZ})  # bob resubmits, late
    code = cli.main(["grade", "--assignment", str(HW3), "--out", str(tmp_path / "grades"), "--only", "bob",
                     *([] if FAST.sandbox else ["--no-sandbox"]), "--cell-timeout", "20", str(first.parent)])
    assert code == 0
    after = book.read_bytes().decode().splitlines(keepends=True)
    assert [x for x in after if x.startswith("ann,")] == [x for x in before if x.startswith("ann,")]
    assert after[0] == before[0] and len(after) == len(before) == 1 + 2 * 4
    with book.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["exercise"]: float(r["points"]) for r in rows if r["student"] == "bob"} == {
        "hw3.discounted_returns": 2.0, "hw3.kl_penalized_rewards": 2.0, "hw3.gae": 3.0, "hw3.quiz": 3.0}
    assert {r["seed"] for r in rows} == {str(SEED)}  # bob's hidden inputs are the class's
    assert (tmp_path / "grades" / "feedback" / "ann.md").read_bytes() == ann_feedback
    assert "| hw3.gae | 3.00 / 3 | 2 | 0 | 0 |" in (tmp_path / "grades" / "summary.md").read_text()


def test_only_names_a_missing_student_in_one_sentence(tmp_path):
    from rlcourse.grading import grader

    path = submit(tmp_path, "ann", {})
    with pytest.raises(ValueError, match=r"--only zed: no submission zed.ipynb among those passed \(ann\)"):
        grader.grade(HW3, [path.parent], tmp_path / "grades", only="zed", limits=FAST, progress=False)
