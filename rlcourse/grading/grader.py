"""``rlcourse grade``: grade homework submissions fairly, trusting nothing the student's kernel says.

For each submission (in its own worker process when ``jobs > 1``):

1. **Validate** the file with ``nbformat``: not JSON, truncated, not nbformat 4 or not a
   valid notebook -> every exercise scores 0 with that reason; the batch goes on.
2. **Rebuild** the notebook from the instructor's template (the solution notebook): only
   the student's answer cells are taken, matched by ``metadata["rlcourse"]["exercise"]``
   (or, failing that, by the cell id of the released exercise cell). Everything else the
   student sent (other cells, tags, metadata, outputs, edited check cells) is dropped;
   a deleted answer scores 0, a duplicated one is reported and the last copy is graded.
3. **Static check** each answer (:mod:`rlcourse.grading.static`): an answer that calls or
   imports the reference, or reaches for files, ``exec`` or the kernel, is flagged, scores
   0 and is not run. A courtesy for honest mistakes; the sandbox is the defence.
4. **Execute** in a fresh Jupyter kernel (nbclient) confined by the operating system
   (:mod:`rlcourse.grading.sandbox`, docs/sandbox.md: Landlock, namespaces, seccomp, rlimits),
   with a scrubbed environment, a temporary working directory, a per-cell and a per-submission
   time limit and an output cap. The kernel never loads ``rlcourse``: a prelude loads the
   harness (:mod:`rlcourse.grading.kernel`) by path and gives the template's cells stubs made
   of plain data. After each answer a harness cell evaluates the student's function on inputs
   drawn from the secret per-run seed and writes plain data. A cell that hangs, kills the kernel, floods output or stops the
   harness from running costs its exercise only: the run restarts in a new kernel without it.
5. **Decide** in this process: the numbers are compared with the reference computed here;
   trained weights are loaded here and measured with the gold reward here.

Outputs: ``gradebook.csv`` (merged with an existing one, written atomically) and
``feedback/<student>.md`` (points, what failed and what to do, a hint per exercise; for a wrong value the
smallest failing hidden case, expected vs received where they differ and the tolerance; never the reference's
code), and the class summary ``summary.md`` and ``scores.png`` (:mod:`~rlcourse.grading.summary`).

This module is the order of those steps; each idea has its own module: reading submissions
(:mod:`~rlcourse.grading.submission`), running them in the sandbox (:mod:`~rlcourse.grading.execute`,
:mod:`~rlcourse.grading.sandbox`, :mod:`~rlcourse.grading.kernel`), the verdict of each kind of
exercise (:mod:`~rlcourse.grading.kinds`), the gradebook and feedback (:mod:`~rlcourse.grading.gradebook`).
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from rlcourse.grading import sandbox, spec, static
from rlcourse.grading.execute import Limits, Ran, build_plan, run_plan, write_course
from rlcourse.grading.gradebook import (GRADEBOOK_COLUMNS, Row, feedback_markdown, read_gradebook, write_gradebook,
                                        write_text_atomic)
from rlcourse.grading.kinds import NO_FUNCTION, Verdict, kind_of, limit_reason, status_word
from rlcourse.grading.submission import (Template, answer_cell_numbers, collect_submissions, read_submission,
                                         student_answers)

# ----------------------------------------------------------------------------- one submission


def grade_one(template_path: str, submission: str, seed: int, limits: Limits, version: str) -> tuple[list[dict], str]:
    """Grade one submission; returns (gradebook rows as dicts, feedback Markdown). Never raises for a bad submission."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(limits.threads)
    try:
        return _grade_one(template_path, submission, seed, limits, version)
    finally:
        torch.set_num_threads(threads)  # the caller's thread count (it changes the last bits of its results)


def _grade_one(template_path: str, submission: str, seed: int, limits: Limits, version: str) -> tuple[list[dict], str]:
    from rlcourse.model import runtime

    runtime.quiet()  # in a pool worker too: no library progress bars between the grader's own
    template = _template(Path(template_path))
    path = Path(submission)
    student = path.stem
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()

    isolation = sandbox.ISOLATION if limits.sandbox else sandbox.NO_ISOLATION

    def row(ex: str, points: float, status: str, reason: str) -> Row:
        return Row(student, ex, round(points, 2), template.points[ex], status, reason, digest, seed, version, isolation)

    nb, problem = read_submission(data)
    if nb is None:
        rows = [row(ex, 0.0, "invalid", problem) for ex in template.points]
        return [asdict(r) for r in rows], feedback_markdown(student, rows, {}, problem)
    answers, notes = student_answers(nb, template)
    status = _not_run(template, answers, limits)
    # a folder that cannot be removed (a late write into it) must not cost the student the grade
    with tempfile.TemporaryDirectory(prefix="rlcourse-grade-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp) / "work"
        for sub in ("inputs", "outputs", "home", "home/tmp"):
            (workdir / sub).mkdir(parents=True)
        write_course(template, workdir / "inputs")
        # each kind writes its hidden inputs (a function's cases) and keeps what its verdict needs
        prepared = {ex: kind_of(spec.exercise(ex)).prepare(spec.exercise(ex), seed, workdir / "inputs")
                    for ex in template.points}
        ran = Ran()
        if set(template.points) - set(status):
            ran = run_plan(build_plan(template, answers, set(status), workdir, limits), workdir, limits)
        verdicts = {ex: Verdict(0.0, reason) for ex, (_, reason) in {**ran.failed, **status}.items()}
        for ex in template.points:
            if ex not in verdicts:
                verdicts[ex] = _verdict(ex, prepared[ex], workdir / "outputs", seed, limits)
    numbers = answer_cell_numbers(nb, template)
    rows, details = [], {}
    for ex, max_points in template.points.items():
        verdict = verdicts[ex]
        reason = verdict.reason
        if ex in ran.raised and verdict.fraction < 1:  # the answer cell's own exception comes first: fix it first
            reason = _with_raised(ex, reason, _raised_reason(numbers.get(ex), ran.raised[ex], limits))
        word = status_word(verdict.fraction == 1.0, reason)
        if ex in status or ex in ran.failed:
            word = (status.get(ex) or ran.failed[ex])[0]
        rows.append(row(ex, verdict.fraction * max_points, word, reason))
        if verdict.detail and verdict.fraction < 1:
            details[ex] = list(verdict.detail)
    return [asdict(r) for r in rows], feedback_markdown(student, rows, notes, "", details)


_TEMPLATES: dict[tuple, Template] = {}  # the assignment, read once per grading process (and again if it changed)


def _template(path: Path) -> Template:
    """The assignment's :class:`Template`, kept per process: every submission of a batch is rebuilt from it."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _TEMPLATES:
        _TEMPLATES.clear()
        _TEMPLATES[key] = Template.load(path)
    return _TEMPLATES[key]


def _not_run(template: Template, answers: dict[str, str], limits: Limits) -> dict[str, tuple[str, str]]:
    """Exercises whose answer is not run at all: missing, or flagged by the static check -> (status, reason)."""
    status = {}
    for ex in template.points:
        if ex not in answers:
            status[ex] = ("missing", "answer cell not found (deleted, or its metadata changed): copy it back from the "
                                     "released exercise notebook")
        elif limits.static_check and (problems := static.answer_problems(answers[ex], spec.exercise(ex))):
            status[ex] = ("flagged", "; ".join(problems) + " (no credit)")
    return status


def _verdict(ex: str, prepared, outputs: Path, seed: int, limits: Limits) -> Verdict:
    """The kind's verdict on what the kernel wrote; unreadable results are the submission's problem."""
    spec_ex = spec.exercise(ex)
    try:
        return kind_of(spec_ex).verdict(spec_ex, prepared, outputs, seed, memory_bytes=limits.memory_bytes)
    except Exception as err:  # noqa: BLE001 - whatever the kernel wrote, a zero with a reason
        return Verdict(0.0, f"the results could not be read back ({type(err).__name__})")


def _with_raised(ex: str, reason: str, raised: str) -> str:
    """``reason`` after what the answer cell raised (which explains it when the function was never defined)."""
    if reason.startswith(NO_FUNCTION):
        return f"{raised}; so {spec.exercise(ex).function} was never defined"
    return f"{raised}; then {reason}"


def _raised_reason(number: int | None, error: str, limits: Limits) -> str:
    """What the student reads when the answer cell itself raised: which cell, the exception, what to do."""
    cell = f"your answer cell (cell {number} of your notebook)" if number else "your answer cell"
    limit = limit_reason(error, limits.memory_bytes)
    if limit:
        return f"{cell} was {limit} (it raised {error.split(':')[0]})"
    return f"{cell} raised {error}: run it in your notebook and fix the line its traceback points to"


# ----------------------------------------------------------------------------- the batch


def _grader_failure(template_path: str, submission: str, seed: int, version: str, err: Exception) -> tuple[list[dict], str]:
    """Rows for a submission the grader itself failed on: status "error", 0 points, the instructor can re-grade it."""
    template = Template.load(Path(template_path))
    path = Path(submission)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    reason = f"the grader failed on this file ({type(err).__name__}: {str(err)[:150]}); re-grade it or grade it by hand"
    rows = [Row(path.stem, ex, 0.0, points, "error", reason, digest, seed, version, "") for ex, points in template.points.items()]
    return [asdict(r) for r in rows], feedback_markdown(path.stem, rows, {}, reason)


def grade(assignment: str | Path, submissions: list[str | Path], out: str | Path, jobs: int = 1, seed: int | None = None,
          limits: Limits = Limits(), progress: bool = True, only: str | None = None) -> list[dict]:
    """Grade every submission (or, with ``only``, the one of that student); merge the rows into
    ``out/gradebook.csv``, write ``out/feedback/<student>.md`` and the class summary (``out/summary.md``,
    ``out/scores.png``); return the new rows. Other students' rows are left as they were."""
    from tqdm.auto import tqdm

    from rlcourse.grading import GRADER_VERSION
    from rlcourse.grading.summary import write_summary

    Template.load(Path(assignment))  # a broken assignment fails before any work
    files = collect_submissions(submissions)
    if only is not None:
        files = _only(files, only)
    out = Path(out)
    gradebook = out / "gradebook.csv"
    existing = read_gradebook(gradebook)  # refuse to touch a file that is not a gradebook
    if seed is None and only is not None:
        seed = _gradebook_seed(existing)  # a re-graded student gets the hidden inputs of the class
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}.")
    if limits.sandbox:
        sandbox.require()  # one sentence, before any work, when this machine cannot confine kernels
    else:
        print("warning: grading WITHOUT a sandbox (--no-sandbox): student code can read and write what the grader "
              "can, and reach the network.", file=sys.stderr)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    all_rows: list[dict] = []
    bar = tqdm(total=len(files), desc="grading", unit="submission", disable=not progress)

    def record(rows: list[dict], feedback: str, student: str) -> None:
        all_rows.extend(rows)
        write_gradebook(gradebook, rows)  # after every submission: an interrupted batch keeps what it graded
        write_text_atomic(out / "feedback" / f"{student}.md", feedback)
        bar.update(1)

    args = [(str(assignment), str(f), seed, limits, GRADER_VERSION) for f in files]
    if jobs == 1:
        for a in args:
            try:
                rows, feedback = grade_one(*a)
            except Exception as err:  # noqa: BLE001 - a grader failure on one file must not end the batch
                rows, feedback = _grader_failure(a[0], a[1], a[2], a[4], err)
            record(rows, feedback, Path(a[1]).stem)
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(grade_one, *a): a for a in args}
            for future in as_completed(futures):
                a = futures[future]
                try:
                    rows, feedback = future.result()
                except Exception as err:  # noqa: BLE001 - a grader failure on one file must not end the batch
                    rows, feedback = _grader_failure(a[0], a[1], a[2], a[4], err)
                record(rows, feedback, Path(a[1]).stem)
    bar.close()
    write_summary(gradebook)
    return all_rows


def _only(files: list[Path], student: str) -> list[Path]:
    """The one submission of ``student`` (its file name without .ipynb), or one clear sentence."""
    mine = [f for f in files if f.stem == student]
    if not mine:
        names = ", ".join(f.stem for f in files[:5]) + (", …" if len(files) > 5 else "")
        raise ValueError(f"--only {student}: no submission {student}.ipynb among those passed ({names}); pass the "
                         "student's name as its file is called, without .ipynb.")
    return mine


def _gradebook_seed(rows: list[dict]) -> int | None:
    """The seed the gradebook was graded with (None for an empty one); one sentence when it holds several."""
    seeds = sorted({r["seed"] for r in rows})
    if len(seeds) > 1:
        raise ValueError(f"the gradebook was graded with several seeds ({', '.join(seeds[:3])}); pass the one to "
                         "re-grade with as --seed.")
    return int(seeds[0]) if seeds else None


# the public names of grading: `rlcourse grade` and its options, and the gradebook's columns
__all__ = ["grade", "grade_one", "Limits", "GRADEBOOK_COLUMNS"]
