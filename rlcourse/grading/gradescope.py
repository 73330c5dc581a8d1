"""``rlcourse gradescope``: the homework grader packed as a Gradescope autograder.

Gradescope's autograder specification (gradescope-autograders.readthedocs.io, *Autograder
Specifications*): the zip holds ``setup.sh`` (run once, when Gradescope builds the grading image)
and ``run_autograder`` (run once per submission) at its root. Gradescope unpacks the zip into
``/autograder/source``, puts the student's files in ``/autograder/submission`` and reads
``/autograder/results/results.json``: a top-level ``score``, ``output``, ``visibility``, and a
list of ``tests``, each with ``name``, ``score``, ``max_score``, ``status`` and ``output``. Only
``output`` fields reach the student; the script's stdout is shown to the instructor.

What the zip holds, next to the two scripts: the course package as a wheel (its shipped models
under ``rlcourse/assets`` included), ``constraints.txt`` (the pins), the assignment (the solution
notebook: the grader's template, as for ``rlcourse grade``; Gradescope never shows the zip to
students) and ``autograder.json`` (which notebook, sandbox or not, the results' visibility).

Grading is ``rlcourse grade`` itself (:func:`rlcourse.grading.grader.grade` on the one notebook,
a fresh secret seed, the same sandbox), so each exercise's points, status and feedback text are
the ones its gradebook row and feedback file would hold: for a wrong value, the smallest failing hidden case
of this upload's fresh seed; never the reference's code, a solution or the seed.
"""

from __future__ import annotations

import json
import re
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from rlcourse.grading.submission import Template
from rlcourse.classroom.shipping import build_wheel, check_wheel, checkout  # the one way the course's wheel is built

# the results' visibility values Gradescope documents (top level and per test)
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
CONFIG = "autograder.json"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # torch's CPU-only builds (the default index's are CUDA)

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission (written by `rlcourse gradescope`): it grades the one
# notebook in $ROOT/submission/ as `rlcourse grade` does and writes $ROOT/results/results.json.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"  # setup.sh's environment
cd "$ROOT"
exec "$PYTHON" -m rlcourse.grading.gradescope "$ROOT"
"""


def _setup_script(wheel: str, torch_pin: str) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (written by `rlcourse gradescope`).
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
if ! python3 -c "import ensurepip, venv" 2>/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip
fi
# a virtual environment outside /usr: the sandbox lets student code read /usr, never the course package
python3 -m venv "$ROOT/venv"
PIP=("$ROOT/venv/bin/python" -m pip --disable-pip-version-check)
"${{PIP[@]}}" install --quiet --upgrade pip
# torch first, its CPU build: an unpinned torch would pull a multi-GB CUDA build
"${{PIP[@]}}" install --quiet --index-url {CPU_TORCH_INDEX} "{torch_pin}"
"${{PIP[@]}}" install --quiet -c "$SOURCE/constraints.txt" "$SOURCE/{wheel}"
"${{PIP[@]}}" check
"""


# ----------------------------------------------------------------------------- building the zip


def _torch_pin(constraints: Path) -> str:
    pins = [line.strip() for line in constraints.read_text().splitlines() if re.match(r"torch==", line.strip())]
    if len(pins) != 1:
        raise ValueError(f"{constraints} pins torch {len(pins)} times; it needs exactly one line `torch==X.Y.Z`.")
    return pins[0]


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # a fixed date: the same inputs give the same zip
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_autograder(assignment: str | Path, out: str | Path, sandbox: bool = True, visibility: str = "visible",
                     wheel: str | Path | None = None) -> Path:
    """Write Gradescope's autograder zip for ``assignment`` (a solution notebook) to ``out``; return its path.

    ``sandbox=False`` grades unconfined (as ``rlcourse grade --no-sandbox``), for a Gradescope image
    that cannot confine kernels; ``visibility`` is when students see the results (Gradescope's values);
    ``wheel`` is a prebuilt course wheel (default: built from this checkout).
    """
    assignment = Path(assignment)
    Template.load(assignment)  # a broken assignment fails here, not on Gradescope
    if visibility not in VISIBILITIES:
        raise ValueError(f"--visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}.")
    constraints = checkout() / "constraints.txt"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rlcourse-gradescope-") as tmp:
        wheel = Path(wheel) if wheel is not None else build_wheel(Path(tmp))
        check_wheel(wheel)
        config = {"assignment": assignment.name, "sandbox": sandbox, "visibility": visibility, "wheel": wheel.name}
        with zipfile.ZipFile(out, "w") as zf:
            _add(zf, "setup.sh", _setup_script(wheel.name, _torch_pin(constraints)).encode(), executable=True)
            _add(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
            _add(zf, wheel.name, wheel.read_bytes())
            _add(zf, "constraints.txt", constraints.read_bytes())
            _add(zf, assignment.name, assignment.read_bytes())
            _add(zf, CONFIG, json.dumps(config, indent=1).encode())
    return out


# ----------------------------------------------------------------------------- one submission on Gradescope


def find_submission(folder: Path) -> tuple[Path | None, str]:
    """``(the one notebook the student uploaded, "")``, or ``(None, why not)`` in one sentence for the student.

    A link, or a notebook outside the folder, is not taken: the grader would read what it points to.
    """
    found = []
    if folder.is_dir():
        found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                       and p.is_file() and not p.is_symlink() and p.resolve().is_relative_to(folder.resolve()))
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, "no .ipynb file was found in your submission; upload your homework notebook (the .ipynb Jupyter saved)"
    names = ", ".join(p.relative_to(folder).as_posix() for p in found[:5])
    return None, f"your submission holds {len(found)} notebooks ({names}); upload only your homework notebook"


def results(rows: list[dict], feedback: str, visibility: str, seconds: float) -> dict:
    """Gradescope's results.json from ``rlcourse grade``'s rows and feedback: one test per exercise, whose
    ``output`` is the exercise's status, reason and hint, and the feedback file as the top-level ``output``."""
    from rlcourse.grading.gradebook import Row, hint_for

    tests = []
    for number, fields in enumerate(rows, 1):
        row = Row(**fields)
        hint = hint_for(row)
        tests.append({"name": row.exercise, "number": str(number), "score": float(row.points),
                      "max_score": float(row.max), "status": "passed" if row.points == row.max else "failed",
                      "output": f"{row.status}: {row.reason}" + (f"\nHint: {hint}" if hint else "")})
    return {"score": sum(t["score"] for t in tests), "output": feedback, "output_format": "md",
            "visibility": visibility, "stdout_visibility": "hidden", "execution_time": round(seconds), "tests": tests}


def not_graded(points: dict[str, float], reason: str, visibility: str, seconds: float) -> dict:
    """results.json for a submission that could not be graded at all: every exercise 0, ``reason`` said once."""
    tests = [{"name": ex, "number": str(number), "score": 0.0, "max_score": float(max_points), "status": "failed",
              "output": f"not graded: {reason}"} for number, (ex, max_points) in enumerate(points.items(), 1)]
    return {"score": 0.0, "output": f"Your submission could not be graded: {reason}.", "output_format": "md",
            "visibility": visibility, "stdout_visibility": "hidden", "execution_time": round(seconds), "tests": tests}


def _grade(template: Path, submission: Path, sandbox: bool) -> tuple[list[dict], str]:
    """``rlcourse grade`` on one file (fresh secret seed): its rows and feedback Markdown."""
    from rlcourse.model import runtime
    from rlcourse.grading.grader import Limits, grade

    runtime.quiet()
    with tempfile.TemporaryDirectory(prefix="rlcourse-gradescope-") as out:
        rows = grade(template, [submission], out, jobs=1, limits=Limits(sandbox=sandbox), progress=False)
        feedback = (Path(out) / "feedback" / f"{submission.stem}.md").read_text(encoding="utf-8")
    return rows, feedback


def run_autograder(root: str | Path) -> dict:
    """Grade the notebook in ``root/submission`` with the zip's assignment (in ``root/source``); write
    ``root/results/results.json`` and return it. The instructor's log (stdout) gets the seed and digest."""
    from rlcourse.grading.sandbox import SandboxUnavailable

    start = time.monotonic()
    root = Path(root)
    config = json.loads((root / "source" / CONFIG).read_text())
    template = root / "source" / config["assignment"]
    points = Template.load(template).points
    submission, problem = find_submission(root / "submission")
    if submission is None:
        result = not_graded(points, problem, config["visibility"], time.monotonic() - start)
    else:
        try:
            rows, feedback = _grade(template, submission, config["sandbox"])
            for r in rows:
                print(f"{r['exercise']}: {r['points']:g} / {r['max']:g} {r['status']} (seed {r['seed']}, "
                      f"sha256 {r['sha256'][:12]}, isolation {r['isolation']})")
            result = results(rows, feedback, config["visibility"], time.monotonic() - start)
        except SandboxUnavailable as err:
            print(f"not graded: {err} (rebuild the zip with `rlcourse gradescope --no-sandbox` to grade unconfined)")
            result = not_graded(points, "the autograder cannot confine student code on this machine, so it ran none; "
                                        "your instructor can see why in the autograder's log", config["visibility"],
                                time.monotonic() - start)
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m rlcourse.grading.gradescope [ROOT]`` (``run_autograder`` calls it; ROOT defaults to /autograder)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "/autograder")
    result = run_autograder(root)
    print(f"score {result['score']:g}; wrote {root / 'results' / 'results.json'}")
    return 0


__all__ = ["build_autograder", "build_wheel", "check_wheel", "find_submission", "results", "not_graded",
           "run_autograder", "VISIBILITIES"]


if __name__ == "__main__":
    sys.exit(main())
