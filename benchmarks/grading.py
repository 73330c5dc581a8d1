"""Time `rlcourse grade --jobs 2` on 30 generated submissions of one homework.

Each submission answers every exercise one of three ways, drawn at random (seeded): the
solution (full marks), a wrong answer (the solution's result times 1.01, or no quiz answers:
zero) or the untouched stub (zero). The script prints the wall-clock seconds of the grading
command (and the machine's load average around it: timing on a shared machine says little without it)
and checks every grade against the expected one.

    .venv/bin/python benchmarks/grading.py [--homework hw1_policy] [--n 30] [--jobs 2] [--no-sandbox]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlcourse.grading import build, spec  # noqa: E402

WRONG = '''

_right_{fn} = {fn}


def {fn}(*args, **kwargs):
    out = _right_{fn}(*args, **kwargs)
    return tuple(o * 1.01 for o in out) if isinstance(out, tuple) else out * 1.01 + 0.01
'''


# answers that call another exercise's function (as the notebook asks) are right only if that one is right
DEPENDS = {"hw1.sequence_logprob": "hw1.token_logprobs", "hw2.train_reward_model": "hw2.bradley_terry_loss"}


def make_submissions(homework: str, n: int, folder: Path, seed: int = 0) -> dict[tuple[str, str], float]:
    """Write ``n`` submissions to ``folder``; return the expected points per (student, exercise)."""
    solution = nbformat.read(ROOT / "solutions" / f"{homework}.ipynb", as_version=4)
    cells = build.answer_cells(solution)
    rng = random.Random(seed)
    expected = {}
    for i in range(n):
        nb = build.exercise_notebook(solution)
        student = f"student{i:02d}"
        for exercise_id, (index,) in cells.items():
            ex = spec.exercise(exercise_id)
            choice = rng.choice(["right", "wrong", "stub"])
            points = float(solution.cells[index].metadata["rlcourse"]["points"])
            if choice == "right":
                nb.cells[index].source = solution.cells[index].source
            elif choice == "wrong":
                if ex.kind == "function":
                    nb.cells[index].source = solution.cells[index].source + WRONG.format(fn=ex.function)
                elif ex.kind == "quiz":
                    nb.cells[index].source = "def quiz_answers():\n    return {}"
                else:  # a training exercise: keep the stub (wrong training is slow to generate honestly)
                    choice = "stub"
            needed = DEPENDS.get(exercise_id)
            right = choice == "right" and (needed is None or expected[student, needed] > 0)
            expected[student, exercise_id] = points if right else 0.0
        nbformat.write(nb, folder / f"{student}.ipynb")
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw1_policy")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-sandbox", action="store_true", help="grade unconfined (to measure the sandbox's cost)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "grades"
        subs.mkdir()
        expected = make_submissions(args.homework, args.n, subs)
        command = [sys.executable, "-m", "rlcourse.cli", "grade", "--assignment",
                   str(ROOT / "solutions" / f"{args.homework}.ipynb"), "--out", str(out), "--jobs", str(args.jobs),
                   "--seed", "7", *(["--no-sandbox"] if args.no_sandbox else []), str(subs)]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        if result.returncode != 0:
            sys.exit(f"grading failed:\n{result.stderr[-2000:]}")
        with (out / "gradebook.csv").open() as f:
            got = {(r["student"], r["exercise"]): float(r["points"]) for r in csv.DictReader(f)}
    wrong = [key for key in expected if got.get(key) != expected[key]]
    print(f"{args.homework}: {args.n} submissions graded with --jobs {args.jobs} in {seconds:.1f} s "
          f"({seconds / args.n:.1f} s per submission; load average {load_before:.1f} before, {load_after:.1f} after)")
    print(f"grades as expected: {len(expected) - len(wrong)} / {len(expected)}" + (f"; unexpected: {wrong[:5]}" if wrong else ""))


if __name__ == "__main__":
    main()
