"""``pip install rlcourse``, offline: build the sdist and the wheel from this checkout as
``python -m rlcourse.classroom.shipping`` does, install the wheel into a fresh virtual environment outside
the repository, and use it from another folder as a student would: load the tiny policy, train
one RLOO step, load the shipped reward model, run the console script and copy the notebooks out.

The machine is offline, so the new environment borrows the third-party packages already installed
for this interpreter: a ``.pth`` file holding the path of their site-packages. A path line in a
``.pth`` file only puts that folder on sys.path; the ``.pth`` files inside it are not processed,
so this checkout's editable ``rlcourse`` finder stays off and ``import rlcourse`` finds the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from rlcourse.classroom import shipping

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
SOLUTIONS = sorted(p.name for p in (ROOT / "solutions").iterdir())

pytestmark = pytest.mark.slow

# what a student runs after `pip install rlcourse`, from a folder of their own; prints one JSON line
STUDENT = """
import json, rlcourse
from rlcourse.reward import reward_model
from rlcourse.rl import loops
model, tokenizer = rlcourse.load_policy()
result = loops.train(loops.RLOOConfig(num_steps=1, num_prompts=2, group_size=2, max_new_tokens=8), progress=False)
rm, rm_tokenizer = reward_model.load_trained_reward_model()
print(json.dumps({"file": rlcourse.__file__, "steps": len(result["history"]), "vocab": len(tokenizer),
                  "rm": type(rm).__name__}))
"""


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    sdist = shipping.build_sdist(out)
    return {"sdist": sdist, "wheel": shipping.build_wheel(out, sdist)}


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the repository with the wheel installed, no index."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the third-party packages of this interpreter (torch, transformers, pip...), as a plain path line
    (site / "borrowed_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--ignore-installed",
                    "--disable-pip-version-check", str(dists["wheel"])], check=True, cwd=venv.parent)
    # (--ignore-installed: the borrowed folder holds this checkout's editable rlcourse; never touch it)
    return venv


def run_in(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}  # never this checkout
    return subprocess.run(args, cwd=cwd, env={**env, "OMP_WAIT_POLICY": "PASSIVE"}, capture_output=True, text=True,
                          timeout=120)


def test_wheel_holds_the_models_the_harness_and_the_notebooks_and_no_tests_or_solutions(dists):
    shipping.check_wheel(dists["wheel"])
    with zipfile.ZipFile(dists["wheel"]) as zf:
        names = zf.namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("rlcourse/course/notebooks/")) == NOTEBOOKS
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("rlcourse/course/exercises/")) == EXERCISES
    assert not [n for n in names if n.startswith(("tests/", "solutions/", "docs/")) or "/solutions/" in n]
    assert not [n for n in names if n.endswith("quizzes.py") or "__pycache__" in n]  # the quiz answers' source
    # every module of the checkout ships (pyproject.toml lists the packages by name)
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rlcourse").rglob("*.py") if "__pycache__" not in p.parts)
    assert [m for m in modules if m not in names] == []


def test_sdist_holds_what_the_wheel_is_built_from_and_no_tests_or_solutions(dists):
    with tarfile.open(dists["sdist"]) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    assert {"pyproject.toml", "README.md", "rlcourse/grading/kernel.py", "rlcourse/assets/tiny-gpt/model.safetensors",
            "rlcourse/assets/tiny-rm/model.safetensors", "rlcourse/assets/tiny-math/model.safetensors",
            "rlcourse/assets/quizzes.json"} <= set(names)
    assert {f"notebooks/{n}" for n in NOTEBOOKS} | {f"exercises/{n}" for n in EXERCISES} <= set(names)
    assert not [n for n in names if n.startswith(("tests", "solutions", "benchmarks", "docs"))]


def test_the_installed_wheel_trains_and_loads_its_models_from_outside_the_repository(venv, tmp_path):
    result = run_in(venv, tmp_path, str(venv / "bin" / "python"), "-c", STUDENT)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    installed = Path(report["file"]).resolve()
    assert installed.is_relative_to(venv.resolve()) and not installed.is_relative_to(ROOT), installed
    assert report["steps"] == 1 and report["vocab"] > 0 and report["rm"]


def test_console_script_copies_the_notebooks_and_exercises_never_the_solutions(venv, tmp_path):
    script = str(venv / "bin" / "rlcourse")
    assert run_in(venv, tmp_path, script, "--help").returncode == 0
    result = run_in(venv, tmp_path, script, "notebooks", "course")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "course" / "notebooks").iterdir()) == NOTEBOOKS
    assert sorted(p.name for p in (tmp_path / "course" / "exercises").iterdir()) == EXERCISES
    assert len(NOTEBOOKS) == 8 and len(EXERCISES) == 6
    assert sorted(p.name for p in (tmp_path / "course").iterdir()) == ["exercises", "notebooks"]
    assert (tmp_path / "course" / "exercises" / EXERCISES[0]).read_bytes() == (ROOT / "exercises" / EXERCISES[0]).read_bytes()

    again = run_in(venv, tmp_path, script, "notebooks", "course")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert again.stderr.count("\n") == 1  # one sentence, no traceback
    assert run_in(venv, tmp_path, script, "notebooks", "course", "--force").returncode == 0
