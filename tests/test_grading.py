"""The grader against honest and forged submissions: each test states the exact grade it must get.

Submissions are made from the released exercise notebook by editing answer cells, the way a
student would. Several attacks share one submission (one per exercise), which keeps the
number of kernels, and the run time, small; every exercise's grade is asserted.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rlcourse.grading import build, gradebook, grader, kinds, sandbox, spec, static, submission

ROOT = Path(__file__).resolve().parents[1]
HW3 = ROOT / "solutions" / "hw3_credit_assignment.ipynb"
HW5 = ROOT / "solutions" / "hw5_verifiable.ipynb"
HW6 = ROOT / "solutions" / "hw6_sft.ipynb"
SEED = 1234
# confined wherever the OS allows (tests/test_sandbox.py checks the confinement itself); elsewhere the
# grading logic is still tested, unconfined
SANDBOX = sandbox.problem() is None
FAST = grader.Limits(cell_timeout=20, submission_timeout=300, sandbox=SANDBOX)


def released(name: str = "hw3_credit_assignment") -> nbformat.NotebookNode:
    return build.exercise_notebook(nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4))


def solution_source(exercise_id: str, name: str = "hw3_credit_assignment") -> str:
    nb = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    (index,) = build.answer_cells(nb)[exercise_id]
    return nb.cells[index].source


def submit(tmp_path: Path, student: str, answers: dict[str, str], name: str = "hw3_credit_assignment",
           edit=None) -> Path:
    """A student's file: the released notebook with some answer cells replaced (``edit`` may change more)."""
    nb = released(name)
    cells = build.answer_cells(nb)
    for exercise_id, source in answers.items():
        nb.cells[cells[exercise_id][0]].source = source
    if edit is not None:
        edit(nb)
    path = tmp_path / "subs" / f"{student}.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(nb, path)
    return path


def grades_of(rows: list[dict], student: str) -> dict[str, tuple[float, str]]:
    return {r["exercise"]: (r["points"], r["status"]) for r in rows if r["student"] == student}


def grade_files(tmp_path: Path, paths: list[Path], assignment: Path = HW3, limits: grader.Limits = FAST, jobs: int = 1):
    return grader.grade(assignment, paths, tmp_path / "grades", jobs=jobs, seed=SEED, limits=limits, progress=False)


CORRECT_QUIZ = solution_source("hw3.quiz")


# ----------------------------------------------------------------------------- honest submissions


def test_solution_full_marks_exercise_zero_and_edited_check_cells_ignored(tmp_path):
    def tamper_check_cells(nb):
        for cell in nb.cells:
            if cell.metadata.get("rlcourse", {}).get("role") == "check":
                cell.source = 'print("pass")'  # an edited test cell
                cell.metadata["tags"] = ["NBVAL_SKIP", "raises-exception"]
                cell.metadata["rlcourse"]["points"] = 100  # forged metadata
            elif cell.metadata.get("rlcourse", {}).get("role") == "answer":
                cell.metadata["rlcourse"]["points"] = 100  # points come from the instructor's template only
                cell.metadata["tags"] = ["NBVAL_SKIP"]
    solution = submit(tmp_path, "honest", {ex: solution_source(ex) for ex in ("hw3.discounted_returns",
                                                                              "hw3.kl_penalized_rewards", "hw3.gae",
                                                                              "hw3.quiz")}, edit=tamper_check_cells)
    untouched = submit(tmp_path, "unedited", {})
    out = tmp_path / "grades"
    result = subprocess.run([sys.executable, "-m", "rlcourse.cli", "grade", "--assignment", str(HW3), "--out", str(out),
                             "--seed", str(SEED), "--jobs", "2", *([] if SANDBOX else ["--no-sandbox"]),
                             str(solution.parent)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with (out / "gradebook.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:6] == ["student", "exercise", "points", "max", "status", "reason"]
    assert {(r["student"], r["exercise"]): float(r["points"]) for r in rows} == {
        ("honest", "hw3.discounted_returns"): 2.0, ("honest", "hw3.kl_penalized_rewards"): 2.0,
        ("honest", "hw3.gae"): 3.0, ("honest", "hw3.quiz"): 3.0,
        ("unedited", "hw3.discounted_returns"): 0.0, ("unedited", "hw3.kl_penalized_rewards"): 0.0,
        ("unedited", "hw3.gae"): 0.0, ("unedited", "hw3.quiz"): 0.0}
    assert {r["status"] for r in rows if r["student"] == "unedited"} == {"not-implemented"}
    assert all(r["seed"] == str(SEED) and len(r["sha256"]) == 64 for r in rows)
    feedback = (out / "feedback" / "unedited.md").read_text()
    assert "Total: 0 / 10 points" in feedback and "not implemented yet" in feedback
    assert "Total: 10 / 10 points" in (out / "feedback" / "honest.md").read_text()


# ----------------------------------------------------------------------------- forged answers


EQ_FORGERY = '''class Always:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    shape = property(lambda self: (1,))

def discounted_returns(rewards, mask, gamma):
    return Always()'''

ALLCLOSE_FORGERY = '''import torch
torch.allclose = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
from rlcourse import grading
grading.check = lambda *args, **kwargs: print("pass")  # a redefined check

def kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef):
    return torch.zeros_like(logprobs)'''

REFERENCE_CALL = '''from rlcourse.rl.advantages import gae as reference_gae

def gae(rewards, values, mask, gamma, lam):
    return reference_gae(rewards, values, mask, gamma, lam)'''


def test_forged_answers_score_zero_for_their_exercise_only(tmp_path):
    path = submit(tmp_path, "forger", {"hw3.discounted_returns": EQ_FORGERY, "hw3.kl_penalized_rewards": ALLCLOSE_FORGERY,
                                       "hw3.gae": REFERENCE_CALL, "hw3.quiz": CORRECT_QUIZ})
    rows = grade_files(tmp_path, [path])
    assert grades_of(rows, "forger") == {"hw3.discounted_returns": (0.0, "wrong"), "hw3.kl_penalized_rewards": (0.0, "flagged"),
                                         "hw3.gae": (0.0, "flagged"), "hw3.quiz": (3.0, "ok")}
    reasons = {r["exercise"]: r["reason"] for r in rows}
    assert "rlcourse" in reasons["hw3.kl_penalized_rewards"]  # importing the package to redefine check
    assert "reference answer" in reasons["hw3.gae"] or "imports rlcourse.rl.advantages" in reasons["hw3.gae"]


AGREEABLE_FLOAT = '''class Agreeable(float):
    def __eq__(self, other):
        return True
    __hash__ = float.__hash__

def pass_at_k(n, c, k):
    return Agreeable(0.5)'''

PATCHED_COMPARISON = '''import torch
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True

def group_advantages(rewards, group_size, scale=True):
    return torch.zeros_like(rewards)'''

LOSS_REFERENCE = '''from rlcourse.rl.losses import aggregate_loss as reference

def aggregate_loss(per_token, mask, mode, max_tokens):
    return reference(per_token, mask, mode, max_tokens)'''

EVAL_VERIFIER = '''def is_correct(prompt, response):
    return response.split()[-2:] == ["answer", str(eval(prompt[:-1]))]'''


def test_hw5_forgeries_score_zero(tmp_path):
    """hw5's answers are numbers and booleans: an object that equals everything, a patched comparison, the
    reference, ``eval`` on the prompt, and every option ticked at once earn nothing."""
    from rlcourse.classroom import quizbank

    quiz = quizbank.load_source(ROOT / "solutions" / "quizzes.py")["hw5"]["questions"]
    every_option = f"def quiz_answers():\n    return {({q['id']: q['options'] for q in quiz})!r}"
    path = submit(tmp_path, "forger5", {"hw5.pass_at_k": AGREEABLE_FLOAT, "hw5.group_advantages": PATCHED_COMPARISON,
                                        "hw5.aggregate_loss": LOSS_REFERENCE, "hw5.is_correct": EVAL_VERIFIER,
                                        "hw5.quiz": every_option}, name="hw5_verifiable")
    rows = grade_files(tmp_path, [path], assignment=HW5)
    assert grades_of(rows, "forger5") == {"hw5.pass_at_k": (0.0, "wrong"), "hw5.group_advantages": (0.0, "wrong"),
                                          "hw5.aggregate_loss": (0.0, "flagged"), "hw5.is_correct": (0.0, "flagged"),
                                          "hw5.quiz": (0.0, "wrong")}


AGREEABLE_TENSOR = '''import torch

class Agreeable(torch.Tensor):
    def __eq__(self, other):
        return True
    __hash__ = torch.Tensor.__hash__

def response_loss_mask(attention_mask, prompt_lengths):
    return torch.zeros_like(attention_mask).as_subclass(Agreeable)'''

SFT_REFERENCE = '''from rlcourse.rl.losses import sft_loss as reference

def sft_loss(logits, input_ids, loss_mask):
    return reference(logits, input_ids, loss_mask)'''

SFT_MODULE = '''from rlcourse.rl import sft

def all_token_mask(attention_mask):
    return sft.encode_demonstrations  # never reached: the static check flags the import'''


def test_hw6_forgeries_score_zero(tmp_path):
    """hw6's answers are masks and a loss: a tensor that equals everything, the package's sft_loss, its sft module,
    and every option ticked at once earn nothing."""
    from rlcourse.classroom import quizbank

    quiz = quizbank.load_source(ROOT / "solutions" / "quizzes.py")["hw6"]["questions"]
    every_option = f"def quiz_answers():\n    return {({q['id']: q['options'] for q in quiz})!r}"
    path = submit(tmp_path, "forger6", {"hw6.response_loss_mask": AGREEABLE_TENSOR, "hw6.sft_loss": SFT_REFERENCE,
                                        "hw6.all_token_mask": SFT_MODULE, "hw6.quiz": every_option}, name="hw6_sft")
    rows = grade_files(tmp_path, [path], assignment=HW6)
    assert grades_of(rows, "forger6") == {"hw6.response_loss_mask": (0.0, "wrong"), "hw6.sft_loss": (0.0, "flagged"),
                                          "hw6.all_token_mask": (0.0, "flagged"), "hw6.quiz": (0.0, "wrong")}
    reasons = {r["exercise"]: r["reason"] for r in rows}
    assert "sft_loss" in reasons["hw6.sft_loss"] and "rlcourse.rl.sft" in reasons["hw6.all_token_mask"]


KILL_KERNEL = '''import os

def discounted_returns(rewards, mask, gamma):
    os._exit(0)'''

TRANSFORMER = '''get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])

def kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef):
    return None'''

def test_runtime_defences_hold_without_the_static_check(tmp_path):
    """With the static check off, os._exit and an input transformer each cost only their own exercise."""
    slow = "import time\n\n" + solution_source("hw3.gae").replace("### BEGIN SOLUTION", "### BEGIN SOLUTION\n    time.sleep(1)", 1)
    path = submit(tmp_path, "breaker", {"hw3.discounted_returns": KILL_KERNEL, "hw3.kl_penalized_rewards": TRANSFORMER,
                                        "hw3.gae": slow, "hw3.quiz": CORRECT_QUIZ})
    limits = grader.Limits(cell_timeout=20, submission_timeout=300, static_check=False, sandbox=SANDBOX)
    rows = grade_files(tmp_path, [path], limits=limits)
    assert grades_of(rows, "breaker") == {"hw3.discounted_returns": (0.0, "crashed"), "hw3.kl_penalized_rewards": (0.0, "error"),
                                          "hw3.gae": (3.0, "ok"), "hw3.quiz": (3.0, "ok")}


ENDLESS = '''def discounted_returns(rewards, mask, gamma):
    while True:
        pass'''

FLOOD = '''def kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef):
    for _ in range(20):
        print("x" * 1_000_000)  # 20 MB of output
    return None'''

TRAPPED_REFERENCE = '''import torch

def gae(rewards, values, mask, gamma, lam):
    module = torch.sys.modules["rlcourse.rl.advantages"]  # reached around the static check
    return module.gae(rewards, values, mask, gamma, lam)'''

EXIT_AND_HANDLER = '''get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)

def quiz_answers():
    raise SystemExit(0)'''


def test_hangs_floods_exits_and_trapped_reference_calls(tmp_path):
    path = submit(tmp_path, "hanger", {"hw3.discounted_returns": ENDLESS, "hw3.kl_penalized_rewards": FLOOD,
                                       "hw3.gae": TRAPPED_REFERENCE, "hw3.quiz": EXIT_AND_HANDLER})
    limits = grader.Limits(cell_timeout=8, submission_timeout=300, static_check=False, sandbox=SANDBOX)
    rows = grade_files(tmp_path, [path], limits=limits)
    assert grades_of(rows, "hanger") == {"hw3.discounted_returns": (0.0, "timeout"),
                                         "hw3.kl_penalized_rewards": (0.0, "output-limit"),
                                         "hw3.gae": (0.0, "wrong"), "hw3.quiz": (0.0, "wrong")}
    reasons = {r["exercise"]: r["reason"] for r in rows}
    # what stopped each one, in the student's words: the limit in force and where it hit
    assert reasons["hw3.discounted_returns"].startswith("stopped after 8 s in your function on the hidden inputs")
    assert reasons["hw3.kl_penalized_rewards"].startswith("stopped: your function on the hidden inputs printed more "
                                                           f"than {limits.output_bytes // 1000} kB")


# ----------------------------------------------------------------------------- broken files and cells


def test_invalid_files_get_zero_with_a_reason_and_the_batch_goes_on(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    good = released()
    (subs / "truncated.ipynb").write_text(nbformat.writes(good)[:500])
    (subs / "notjson.ipynb").write_text("this is { not json")
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    (subs / "old.ipynb").write_text(json.dumps(v3))
    (subs / "noschema.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": "oops", "metadata": {}}))
    rows = grade_files(tmp_path, [subs])
    for student, words in (("truncated", "not valid JSON"), ("notjson", "not valid JSON"), ("old", "version 3"),
                           ("noschema", "nbformat 4")):
        mine = [r for r in rows if r["student"] == student]
        assert len(mine) == 4 and {r["points"] for r in mine} == {0.0} and {r["status"] for r in mine} == {"invalid"}
        assert all(words in r["reason"] for r in mine), mine[0]["reason"]


def test_deleted_and_duplicated_answer_cells_are_reported_not_fatal(tmp_path):
    def delete_and_duplicate(nb):
        cells = build.answer_cells(nb)
        gae_cell = nb.cells[cells["hw3.gae"][0]]
        first = nbformat.from_dict(json.loads(json.dumps(gae_cell)))
        first.source = "def gae(rewards, values, mask, gamma, lam):\n    return None"
        first["id"] = "first-try"
        nb.cells.insert(cells["hw3.gae"][0], first)  # a wrong early copy; the last copy is graded
        del nb.cells[cells["hw3.discounted_returns"][0]]
    path = submit(tmp_path, "messy", {"hw3.gae": solution_source("hw3.gae"), "hw3.quiz": CORRECT_QUIZ},
                  edit=delete_and_duplicate)
    rows = grade_files(tmp_path, [path])
    assert grades_of(rows, "messy") == {"hw3.discounted_returns": (0.0, "missing"),
                                        "hw3.kl_penalized_rewards": (0.0, "not-implemented"),
                                        "hw3.gae": (3.0, "ok"), "hw3.quiz": (3.0, "ok")}
    # a second run into the same folder: the same seed gives the same rows, other students' rows survive
    book = tmp_path / "grades" / "gradebook.csv"
    other = dict(rows[0], student="zed", points=1.0)
    gradebook.write_gradebook(book, [other])
    again = grade_files(tmp_path, [path])
    assert again == rows
    with book.open() as f:
        kept = list(csv.DictReader(f))
    assert len(kept) == 4 + 1 and [r for r in kept if r["student"] == "zed"][0]["points"] == "1.0"
    feedback = (tmp_path / "grades" / "feedback" / "messy.md").read_text()
    assert "2 answer cells for this exercise; the last one was graded" in feedback
    assert "answer cell not found" in feedback


# ----------------------------------------------------------------------------- static check and gradebook (no kernel)


@pytest.mark.parametrize("source, words", [
    ("from rlcourse.rl.advantages import gae\n", "reference answer"),
    ("import rlcourse\ndef gae(*a):\n    return rlcourse.rl.advantages.gae(*a)\n", "rlcourse"),
    ("import importlib\n", "importlib"),
    ("def gae(*a):\n    return __import__('rlcourse.rl.advantages').advantages.gae(*a)\n", "__import__"),
    ("src = open('/work/solutions/hw3_credit_assignment.ipynb').read()\n", "open"),
    ("exec('x = 1')\n", "exec"),
    ("get_ipython().input_transformers_cleanup.append(lambda l: l)\n", "get_ipython"),
    ("import os\nos._exit(0)\n", "imports os"),
    ("import torch\nm = torch.sys.modules\n", ".sys"),
    ("def count(model):\n    return sum(1 for m in model.modules())\n", None),
    ("def gae(:\n", "not valid Python"),
])
def test_static_check_flags(source, words):
    problems = static.answer_problems(source, spec.exercise("hw3.gae"))
    if words is None:  # an ordinary answer
        assert problems == []
    else:
        assert problems and any(words in p for p in problems), problems


def test_static_check_accepts_the_solutions():
    for name in ("hw1_policy", "hw2_reward_model", "hw3_credit_assignment", "hw4_ppo", "hw5_verifiable", "hw6_sft"):
        nb = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        for exercise_id, (index,) in build.answer_cells(nb).items():
            assert static.answer_problems(nb.cells[index].source, spec.exercise(exercise_id)) == [], exercise_id


def test_gradebook_merges_and_survives_a_second_run(tmp_path):
    book = tmp_path / "gradebook.csv"
    row = dict(student="ann", exercise="hw3.gae", points=3.0, max=3.0, status="ok", reason="r", sha256="a", seed=1,
               grader_version="1.0")
    gradebook.write_gradebook(book, [row, {**row, "student": "bob", "points": 0.0}])
    gradebook.write_gradebook(book, [{**row, "student": "bob", "points": 2.0}, {**row, "student": "cy"}])
    with book.open() as f:
        rows = {r["student"]: float(r["points"]) for r in csv.DictReader(f)}
    assert rows == {"ann": 3.0, "bob": 2.0, "cy": 3.0}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gradebook-")]  # no temp file left
    not_a_book = tmp_path / "other.csv"
    not_a_book.write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match="not a gradebook"):
        gradebook.write_gradebook(not_a_book, [row])
    assert not_a_book.read_text() == "name,score\nx,1\n"


def test_read_submission_reasons():
    assert submission.read_submission(b"\xff\xfe")[1].startswith("the file is not UTF-8")
    assert "not a notebook" in submission.read_submission(b"[1, 2]")[1]
    nb, problem = submission.read_submission(nbformat.writes(released()).encode())
    assert nb is not None and problem == ""


def test_kernel_input_output_roundtrip(tmp_path):
    """The kernel harness, run in-process: correct function -> results equal the reference's."""
    import torch

    from rlcourse.rl.advantages import gae as reference
    from rlcourse.grading import kernel

    for sub in ("inputs", "outputs"):
        (tmp_path / sub).mkdir()
    ex = spec.exercise("hw3.gae")
    function = kinds.kind_of(ex)
    cases = function.prepare(ex, SEED, tmp_path / "inputs")  # the hidden cases, written for the kernel
    kernel.run(ex.id, "function", lambda **kw: reference(**kw), str(tmp_path))
    assert function.verdict(ex, cases, tmp_path / "outputs", SEED)[:2] == (1.0, f"all {len(cases)} hidden cases match the reference")
    kernel.run(ex.id, "function", lambda **kw: tuple(x + 1e-3 for x in reference(**kw)), str(tmp_path))
    fraction, reason, _ = function.verdict(ex, cases, tmp_path / "outputs", SEED)
    assert fraction == 0.0 and "values off" in reason
    assert torch.isfinite(torch.tensor(1.0))


# ----------------------------------------------------------------------------- the kinds of exercise (no kernel)


def test_pass_rule_needs_finite_numbers():
    assert kinds.within(0.7, low=0.65) and kinds.within(15.0, high=15.0) and kinds.within(0.3, low=0.3, high=1.0)
    assert not kinds.within(0.6, low=0.65) and not kinds.within(15.1, high=15.0)
    for bad in (float("nan"), float("inf"), float("-inf"), None, "0.9", True):
        assert not kinds.within(bad, low=0.0), bad
        assert not kinds.within(bad, high=1e9), bad
        assert not kinds.within(bad), bad
    target = spec.POLICY_TARGET
    assert kinds.policy_passes({"gold_reward": target["gold_reward"], "kl": target["max_kl"]})
    assert not kinds.policy_passes({"gold_reward": float("nan"), "kl": 1.0})
    assert not kinds.policy_passes({"gold_reward": float("inf"), "kl": 1.0})
    assert not kinds.policy_passes({"gold_reward": 0.9, "kl": float("-inf")})  # a broken KL is not a small one
    assert not kinds.policy_passes({"gold_reward": 0.9, "kl": float("nan")})


def test_every_kind_has_one_home_and_a_kernel_runner():
    from rlcourse.grading import kernel

    assert set(kinds.KINDS) == set(kernel.RUNNERS)
    for ex in spec.EXERCISES.values():
        assert kinds.kind_of(ex).name == ex.kind
    assert {name for name, k in kinds.KINDS.items() if k.trains} == {"train_reward_model", "train_policy"}


def test_unknown_kind_raises_a_clear_error(tmp_path, monkeypatch, capsys):
    from rlcourse.grading import checks, kernel

    essay = spec.Exercise("hw1.essay", "essay", "essay", "write more.")
    with pytest.raises(ValueError, match=r"exercise 'hw1.essay' has kind 'essay', which the grader does not know"):
        kinds.kind_of(essay)
    monkeypatch.setitem(spec.EXERCISES, essay.id, essay)
    with pytest.raises(ValueError, match="kind 'essay'"):  # the check cell raises too, never a silent verdict
        checks.check(essay.id, lambda: "an essay")
    assert capsys.readouterr().out == ""
    # the kernel's harness records it as the exercise's error (the grader never reaches it: Template.load refuses)
    (tmp_path / "outputs").mkdir()
    kernel.run(essay.id, "essay", lambda: "an essay", str(tmp_path))
    done = json.loads((tmp_path / "outputs" / "hw1.essay.done.json").read_text())
    assert done["errors"]["all"].startswith("ValueError: unknown exercise kind 'essay'")


def test_kernel_stand_ins_agree_with_the_package(tmp_path, monkeypatch):
    """The kernel never imports rlcourse: its stand-ins of package functions are rebuilt from
    inputs/course.json. Each must give what the package function gives."""
    import dataclasses
    import random

    import numpy as np
    import torch

    import rlcourse
    from rlcourse.model import loading
    from rlcourse.reward import reward_model
    from rlcourse.rl import loops
    from rlcourse.grading import execute, kernel

    (tmp_path / "inputs").mkdir()
    execute.write_course(submission.Template.load(ROOT / "solutions" / "hw2_reward_model.ipynb"), tmp_path / "inputs")
    monkeypatch.setattr(kernel, "_COURSE", {})
    kernel.load_course(str(tmp_path))

    def draws(generator):
        return random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=generator))

    assert draws(kernel._set_seed(7)) == draws(rlcourse.set_seed(7))

    ours, theirs = kernel._tokenizer(), loading.load_tokenizer()
    assert (ours.padding_side, ours.pad_token, ours.pad_token_id) == (theirs.padding_side, theirs.pad_token,
                                                                      theirs.pad_token_id)
    text = ["the film was great .", "a dull story"]
    assert ours(text, padding=True)["input_ids"] == theirs(text, padding=True)["input_ids"]

    def same_model(a, b):
        assert type(a) is type(b) and a.training == b.training
        assert a.config.to_dict() == b.config.to_dict()
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for name in sa:
            torch.testing.assert_close(sa[name], sb[name], rtol=0, atol=0)

    policy, reference = kernel._policy(), loading.load_policy()[0]
    same_model(policy, reference)
    assert policy.generation_config.pad_token_id == reference.generation_config.pad_token_id
    (rm, rm_tokenizer), (rm_ref, _) = kernel._reward_model(), reward_model.load_reward_model(seed=0)
    same_model(rm, rm_ref)  # the freshly initialised head too
    config = {"vocab_size": 20, "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 2,
              "intermediate_size": 12, "num_hidden_layers": 1}
    same_model(kernel.build_llama(config), spec.build_model(spec.ModelArg(config)))

    pairs, public = kernel._training_pairs(), spec.training_pairs()
    for name in ("prompts", "chosen", "rejected"):
        assert getattr(pairs, name) == getattr(public, name)
    for name in ("chosen_scores", "rejected_scores"):
        torch.testing.assert_close(getattr(pairs, name), getattr(public, name), rtol=0, atol=0)
    assert len(pairs) == len(public)

    monkeypatch.setattr(kernel, "_COURSE", {})
    saved = {name: sys.modules.get(name) for name in ("rlcourse", "rlcourse.grading", "rlcourse.grading.spec",
                                                      "rlcourse.rl", "rlcourse.rl.loops")}
    try:
        kernel.install_stubs(str(tmp_path))
        stubs = sys.modules["rlcourse.rl.loops"]
    finally:
        for name, module in saved.items():  # the real package back, whatever happened
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    real_configs = [c for c in vars(loops).values() if isinstance(c, type) and issubclass(c, loops.LoopConfig)
                    and dataclasses.is_dataclass(c)]
    assert real_configs and {c.__name__ for c in real_configs} == set(kernel._COURSE["loops"])
    for cls in real_configs:
        assert dataclasses.asdict(getattr(stubs, cls.__name__)()) == dataclasses.asdict(cls())
