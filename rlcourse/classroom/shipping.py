"""What ``pip install rlcourse`` ships: building the sdist and the wheel, checking them, and
copying the course's notebooks out of an installed package (``rlcourse notebooks DIR``).

The wheel holds the package, its models (``rlcourse/assets``), the grader's kernel files, and
the lecture notebooks and exercises as two data-only packages, ``rlcourse.course.notebooks`` and
``rlcourse.course.exercises``, read at build time from the repository's ``notebooks/`` and
``exercises/`` (``package-dir`` in pyproject.toml), so each notebook lives once in git. Never
``tests/`` or ``solutions/`` (MANIFEST.in prunes them from the sdist).

Build both offline, as ``python -m build`` would (the sdist first, then the wheel from it)::

    .venv/bin/python -m rlcourse.classroom.shipping dist/
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # .../rlcourse
# the course folders that ship, in the order a student meets them; solutions/ never does
COURSE_FOLDERS = ("notebooks", "exercises")
# files every wheel must carry: the grader's harness and sandbox launcher, the models the kernels load
WHEEL_MUST_HOLD = ("rlcourse/grading/kernel.py", "rlcourse/grading/landlock.py", "rlcourse/assets/quizzes.json",
                   "rlcourse/assets/tiny-gpt/model.safetensors", "rlcourse/assets/tiny-rm/model.safetensors",
                   "rlcourse/assets/tiny-math/model.safetensors")
# what the copy of the checkout leaves out (MANIFEST.in decides the rest, as for `python -m build`)
NOT_COPIED = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".ipynb_checkpoints",
              ".pytest_cache", "runs", "grades")


def checkout() -> Path:
    """The repository this package runs from (the distributions are built from it)."""
    root = PACKAGE.parent
    if not (root / "pyproject.toml").is_file() or not (root / "constraints.txt").is_file():
        raise ValueError(f"no pyproject.toml and constraints.txt next to the package in {root}; build the "
                         "course's wheel from a checkout of the course repository.")
    return root


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--disable-pip-version-check"], capture_output=True, text=True)


def build_sdist(out_dir: Path) -> Path:
    """The course's sdist in ``out_dir``, built offline from a copy of the checkout (so that no
    ``*.egg-info`` lands in the repository, and no stale ``build/`` in the sdist)."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rlcourse-sdist-") as tmp:
        src = Path(tmp) / "rlcourse-src"
        shutil.copytree(checkout(), src, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
        # setuptools, the build backend of pyproject.toml, called as `python -m build --sdist` would
        result = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                                 "print(build_meta.build_sdist(sys.argv[1]))", str(out_dir)],
                                cwd=src, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"building the course sdist failed (setuptools exited {result.returncode}): "
                      f"{result.stderr.strip()[-300:]}")
    return out_dir / result.stdout.strip().splitlines()[-1]


def build_wheel(out_dir: Path, sdist: Path | None = None) -> Path:
    """The course package as a wheel in ``out_dir``, built offline from ``sdist`` (default: a new
    sdist of the checkout, built in a temporary folder), so a file the sdist forgets is missing here too."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rlcourse-wheel-") as tmp:
        sdist = Path(sdist) if sdist is not None else build_sdist(Path(tmp))
        result = _pip("wheel", "-w", str(out_dir), str(sdist))
    wheels = sorted(out_dir.glob("rlcourse-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise OSError(f"building the course wheel failed (pip wheel exited {result.returncode}, "
                      f"{len(wheels)} wheels in {out_dir}): {result.stderr.strip()[-300:]}")
    return wheels[0]


def check_wheel(wheel: Path) -> None:
    """Raise one sentence when the wheel lacks the harness, the launcher, a shipped model or the notebooks."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = [name for name in WHEEL_MUST_HOLD if name not in names]
    missing += [f"rlcourse/course/{folder}/*.ipynb" for folder in COURSE_FOLDERS
                if not any(n.startswith(f"rlcourse/course/{folder}/") and n.endswith(".ipynb") for n in names)]
    if missing:
        raise ValueError(f"the wheel {Path(wheel).name} lacks {', '.join(missing)}; check [tool.setuptools.package-data] "
                         "in pyproject.toml and rebuild it.")


# ----------------------------------------------------------------------------- rlcourse notebooks DIR


def course_folder(name: str) -> Path:
    """Where the installed package keeps ``notebooks`` or ``exercises``: inside it when installed
    from the wheel, else the checkout's own folder (an editable install, or the repository on sys.path)."""
    for folder in (PACKAGE / "course" / name, PACKAGE.parent / name):
        if any(folder.glob("*.ipynb")):
            return folder
    raise OSError(f"found no {name} notebooks in {PACKAGE / 'course' / name} or {PACKAGE.parent / name}; "
                  "reinstall rlcourse from its wheel.")


def copy_notebooks(dest: str | Path, force: bool = False) -> dict[str, list[Path]]:
    """Copy the lecture notebooks and the exercises (never the solutions) into ``dest/notebooks``
    and ``dest/exercises``; return folder -> files written. Existing files are kept unless ``force``."""
    dest = Path(dest)
    plan = {name: sorted(course_folder(name).glob("*.ipynb")) for name in COURSE_FOLDERS}
    targets = [dest / name / src.name for name, sources in plan.items() for src in sources]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ValueError(f"{existing[0]} already exists{more}; pass --force to overwrite, or choose another folder.")
    written: dict[str, list[Path]] = {}
    for name, sources in plan.items():
        (dest / name).mkdir(parents=True, exist_ok=True)
        written[name] = [Path(shutil.copyfile(src, dest / name / src.name)) for src in sources]
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m rlcourse.classroom.shipping OUT``: the sdist, then the wheel built from it, into OUT."""
    out = Path((argv if argv is not None else sys.argv[1:] or ["dist"])[0])
    sdist = build_sdist(out)
    wheel = build_wheel(out, sdist)
    check_wheel(wheel)
    print(f"wrote {sdist} and {wheel}")
    return 0


__all__ = ["COURSE_FOLDERS", "WHEEL_MUST_HOLD", "build_sdist", "build_wheel", "check_wheel", "checkout",
           "copy_notebooks", "course_folder"]

if __name__ == "__main__":
    sys.exit(main())
