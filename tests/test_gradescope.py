"""The Gradescope autograder, without Gradescope: build hw1's zip, unpack it into a folder standing in
for /autograder, and run its own ``run_autograder`` on four submissions (honest, wrong, forged,
corrupt) with this checkout's Python, as Gradescope would run it after ``setup.sh`` (which is only
checked here: its syntax, and that it installs the wheel the zip holds). Each ``results.json`` is
checked against Gradescope's documented fields and against the grade ``rlcourse grade`` gives.
The four runs go side by side, each one kernel, so the module takes about half a minute.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from rlcourse import cli
from rlcourse.grading import gradescope, sandbox
from test_grading import ROOT, solution_source, submit

HW1 = ROOT / "solutions" / "hw1_policy.ipynb"
SANDBOX = sandbox.problem() is None  # confined wherever the OS allows, as in tests/test_grading.py
FULL = {"hw1.token_logprobs": 2.0, "hw1.sequence_logprob": 2.0, "hw1.sampling_distribution": 2.0,
        "hw1.count_parameters": 1.0, "hw1.quiz": 3.0}

ZEROS = '''import torch

def sampling_distribution(logits, temperature, top_k):
    return torch.zeros_like(logits)'''

REFERENCE_CALL = '''from rlcourse.model.policy import sequence_logprob as reference

def sequence_logprob(model, input_ids, attention_mask, response_mask):
    return reference(model, input_ids, attention_mask, response_mask)'''

EQ_FORGERY = '''class Always:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __iter__(self):
        return iter((Always(), Always()))

def count_weights_and_biases(model):
    return Always()'''

# Gradescope's documented results.json fields (gradescope-autograders.readthedocs.io, "Autograder Specifications")
TOP_FIELDS = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str,
              "test_output_format": str, "test_name_format": str, "visibility": str, "stdout_visibility": str,
              "extra_data": dict, "tests": list, "leaderboard": list}
TEST_FIELDS = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
               "number": str, "output": str, "output_format": str, "tags": list, "visibility": str, "extra_data": dict}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def submissions(tmp_path: Path) -> dict[str, Path]:
    """student -> the notebook they upload."""
    solutions = {ex: solution_source(ex, "hw1_policy") for ex in FULL}
    corrupt = tmp_path / "subs" / "corrupt.ipynb"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_text(HW1.read_text()[:5000])  # a truncated upload: not JSON
    return {"honest": HW1,
            "wrong": submit(tmp_path, "wrong", {**solutions, "hw1.sampling_distribution": ZEROS}, name="hw1_policy"),
            "forged": submit(tmp_path, "forged", {**solutions, "hw1.sequence_logprob": REFERENCE_CALL,
                                                  "hw1.count_parameters": EQ_FORGERY}, name="hw1_policy"),
            "corrupt": corrupt}


def unpack(zip_path: Path, root: Path) -> None:
    """What Gradescope does with the zip: its files in root/source (modes kept), run_autograder copied to root."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = root / "source" / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            target.chmod(stat.S_IMODE(info.external_attr >> 16) or 0o644)
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    (root / "run_autograder").chmod(0o755)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the zip, student -> results.json) after running the unpacked autograder on each submission."""
    tmp_path = tmp_path_factory.mktemp("gradescope")
    zip_path = tmp_path / "hw1_autograder.zip"
    assert cli.main(["gradescope", str(HW1), "-o", str(zip_path), *([] if SANDBOX else ["--no-sandbox"])]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOGRADER_PYTHON": sys.executable, "OMP_WAIT_POLICY": "PASSIVE"}
    runs = {}
    for student, notebook in submissions(tmp_path).items():
        root = tmp_path / student
        unpack(zip_path, root)
        (root / "submission").mkdir()
        (root / "submission" / notebook.name).write_bytes(notebook.read_bytes())
        runs[student] = subprocess.Popen([str(root / "run_autograder")], env={**env, "AUTOGRADER_ROOT": str(root)},
                                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = {}
    for student, run in runs.items():
        log, _ = run.communicate(timeout=600)
        assert run.returncode == 0, log
        results[student] = json.loads((tmp_path / student / "results" / "results.json").read_text())
    return zip_path, results


def test_zip_has_gradescopes_layout_and_installs_its_own_wheel(built, tmp_path):
    zip_path, _ = built
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        (wheel,) = [n for n in names if n.endswith(".whl")]
        (tmp_path / wheel).write_bytes(zf.read(wheel))
    assert {"setup.sh", "run_autograder", "constraints.txt", "hw1_policy.ipynb", "autograder.json"} <= names
    assert all("/" not in n for n in names)  # at the zip's root, as Gradescope requires
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    syntax = subprocess.run(["bash", "-n", str(zip_path.parent / "honest" / "source" / "setup.sh")], capture_output=True,
                            text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert f'"$SOURCE/{wheel}"' in setup and '"torch==2.13.0"' in setup and "download.pytorch.org/whl/cpu" in setup
    assert '-c "$SOURCE/constraints.txt"' in setup
    gradescope.check_wheel(tmp_path / wheel)  # harness, launcher and the shipped models under rlcourse/assets
    with zipfile.ZipFile(tmp_path / wheel) as zf:
        assert {"rlcourse/assets/tiny-gpt/tokenizer.json", "rlcourse/assets/tiny-rm/config.json"} <= set(zf.namelist())


@pytest.mark.parametrize("student", ["honest", "wrong", "forged", "corrupt"])
def test_results_follow_gradescopes_schema(built, student):
    result = built[1][student]
    for key, value in result.items():
        assert key in TOP_FIELDS and isinstance(value, TOP_FIELDS[key]), key
    assert result["visibility"] in gradescope.VISIBILITIES and result["stdout_visibility"] in gradescope.VISIBILITIES
    assert result["output_format"] in FORMATS
    assert [t["name"] for t in result["tests"]] == list(FULL)
    for test in result["tests"]:
        for key, value in test.items():
            assert key in TEST_FIELDS and isinstance(value, TEST_FIELDS[key]), key
        assert test["status"] in ("passed", "failed") and test["output"]
        assert 0 <= test["score"] <= test["max_score"] == FULL[test["name"]]
    assert result["score"] == sum(t["score"] for t in result["tests"])


def scores(result: dict) -> dict[str, float]:
    return {t["name"]: t["score"] for t in result["tests"]}


def test_scores_are_the_graders(built):
    results = built[1]
    assert scores(results["honest"]) == FULL and results["honest"]["score"] == 10
    assert scores(results["wrong"]) == {**FULL, "hw1.sampling_distribution": 0.0}
    assert scores(results["forged"]) == {**FULL, "hw1.sequence_logprob": 0.0, "hw1.count_parameters": 0.0}
    assert scores(results["corrupt"]) == dict.fromkeys(FULL, 0.0) and results["corrupt"]["score"] == 0


def test_output_is_the_students_feedback_and_never_the_solution(built):
    results = built[1]
    wrong = {t["name"]: t["output"] for t in results["wrong"]["tests"]}
    assert wrong["hw1.sampling_distribution"].startswith("wrong: ") and "Hint: the temperature" in wrong["hw1.sampling_distribution"]
    assert "**Total: 8 / 10 points**" in results["wrong"]["output"]  # the feedback file of `rlcourse grade`
    forged = {t["name"]: t["output"] for t in results["forged"]["tests"]}
    assert forged["hw1.sequence_logprob"].startswith("flagged: ")
    corrupt = results["corrupt"]
    assert all(t["output"].startswith("invalid: the file is not valid JSON") and "\n" not in t["output"]
               for t in corrupt["tests"])
    assert "could not be graded: the file is not valid JSON" in corrupt["output"]
    solution = nbformat.read(HW1, as_version=4)
    secrets = ["BEGIN SOLUTION", "logp.gather(", "one next token", "seed"]  # an answer's code, a quiz answer, the seed
    secrets += [line.strip() for cell in solution.cells if "### BEGIN SOLUTION" in cell.source
                for line in cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].splitlines()
                if len(line.strip()) > 20]
    for student, result in results.items():
        text = json.dumps(result)
        assert not [s for s in secrets if s in text], student


def test_a_submission_without_exactly_one_notebook_scores_zero_with_a_reason(built, tmp_path):
    root = tmp_path / "autograder"
    unpack(built[0], root)
    (root / "submission").mkdir()
    (root / "submission" / "notes.txt").write_text("my answers are in the notebook")
    (root / "submission" / "link.ipynb").symlink_to(HW1)  # a link to the instructor's file is not a submission
    result = gradescope.run_autograder(root)
    assert result == json.loads((root / "results" / "results.json").read_text())
    assert result["score"] == 0 and scores(result) == dict.fromkeys(FULL, 0.0)
    assert result["output"].startswith("Your submission could not be graded: no .ipynb file was found")
    for name in ("a.ipynb", "b.ipynb"):
        (root / "submission" / name).write_text("{}")
    result = gradescope.run_autograder(root)
    assert "holds 2 notebooks (a.ipynb, b.ipynb); upload only your homework notebook" in result["output"]
