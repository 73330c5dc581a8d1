"""Homework notebooks: exercises/ is generated from solutions/, the specs match the notebooks,
the check cells say the right thing to a student, and the grader gives the solutions full
marks and the unedited exercises zero."""

from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch

from rlcourse.rl import loops
from rlcourse.grading import build, checks, grader, references, sandbox, spec

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["hw1_policy", "hw2_reward_model", "hw3_credit_assignment", "hw4_ppo", "hw5_verifiable", "hw6_sft"]


# ----------------------------------------------------------------------------- build-exercises


def test_strip_solutions_hand_case():
    source = "def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\nprint(1)"
    assert build.strip_solutions(source) == (
        "def f(x):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n    raise NotImplementedError(\"replace this line with your code\")\nprint(1)")
    with pytest.raises(ValueError, match="never closed"):
        build.strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError, match="never opened"):
        build.strip_solutions("x = 1\n### END SOLUTION\n")


@pytest.mark.parametrize("name", NAMES)
def test_exercises_are_up_to_date(name):
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    expected = build.render(build.exercise_notebook(solution, name))
    path = ROOT / "exercises" / f"{name}.ipynb"
    assert path.exists() and path.read_text(encoding="utf-8") == expected, (
        f"exercises/{name}.ipynb is stale: run `rlcourse build-exercises` and commit exercises/.")


@pytest.mark.parametrize("name", NAMES)
def test_exercise_format(name):
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    assert len(exercise.cells) == len(solution.cells)
    for sol, ex in zip(solution.cells, exercise.cells):
        assert ex.metadata.get("rlcourse") == sol.metadata.get("rlcourse") and ex.get("id") == sol.get("id")
        if ex.cell_type == "code":
            assert ex.outputs == [] and ex.execution_count is None
            assert build.BEGIN not in ex.source and build.END not in ex.source
            role = ex.metadata.get("rlcourse", {}).get("role")
            assert (build.STUB in ex.source) == (role == "answer"), ex.source
            assert (build.BEGIN in sol.source) == (role == "answer")
    assert all(c.outputs for c in solution.cells if c.cell_type == "code" and c.metadata.get("rlcourse", {}).get("role") == "check")


def test_every_exercise_has_one_answer_and_one_check_cell():
    seen = {}
    for name in NAMES:
        nb = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        graded = [e for e, cells in build.answer_cells(nb).items()]
        assert 4 <= len(graded) <= 6 and sum(e.endswith(".quiz") for e in graded) == 1, name  # 3-5 exercises + a quiz
        for ex_id, cells in build.answer_cells(nb).items():
            assert len(cells) == 1
            seen[ex_id] = name
            checks_ = [c for c in nb.cells if c.metadata.get("rlcourse") == {"exercise": ex_id, "role": "check"}]
            assert len(checks_) == 1 and f'"{ex_id}"' in checks_[0].source
    assert sorted(seen) == sorted(spec.EXERCISES)


def test_unedited_exercises_cannot_crash_in_given_cells():
    """Only check cells (which catch NotImplementedError) may call a student's function: a given cell that
    calls one would stop the unedited exercise notebook with an error."""
    import ast

    for name in NAMES:
        nb = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        functions = {spec.exercise(e).function for e in build.answer_cells(nb)}
        for cell in nb.cells:
            if cell.cell_type == "code" and "rlcourse" not in cell.metadata:
                called = {n.func.id for n in ast.walk(ast.parse(cell.source))
                          if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
                assert not called & functions, (name, cell.source)


# ----------------------------------------------------------------------------- the references the package did not have


def test_sampling_distribution_against_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, generator=g)
    for temperature, top_k in ((1.0, 0), (0.5, 3), (2.0, 1)):
        got = references.sampling_distribution(logits, temperature, top_k)
        for b in range(3):
            row = [x / temperature for x in logits[b].tolist()]
            kept = sorted(range(7), key=lambda v: -row[v])[: top_k or 7]
            z = sum(math.exp(row[v]) for v in kept)
            want = [math.exp(row[v]) / z if v in kept else 0.0 for v in range(7)]
            torch.testing.assert_close(got[b], torch.tensor(want, dtype=torch.float64))


def test_kl_penalized_rewards_hand_case():
    scores = torch.tensor([1.0, -2.0])
    logprobs = torch.tensor([[-1.0, -1.0, -3.0], [-0.5, -2.0, -1.0]])
    ref_logprobs = torch.tensor([[-2.0, -1.0, -1.0], [-0.5, -1.0, -1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    want = torch.tensor([[-0.5 * 1.0, 0.0 + 1.0, 0.0], [0.0, -0.5 * -1.0, 0.0 - 2.0]])
    torch.testing.assert_close(loops.kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, 0.5), want)


def test_is_correct_reads_the_texts_like_arith():
    assert references.is_correct("4 + 3 - 2 =", "4 + 3 = 8 ; 8 - 2 = 5 ; answer 5")  # wrong steps, right answer
    assert references.is_correct("1 - 9 =", "answer -8") and not references.is_correct("1 - 9 =", "answer 8")
    for wrong in ("answer 5 ;", "answer 05", "answer +5", "4 + 3 = 7 ;answer 5", "answer 5 ; answer 4", ""):
        assert not references.is_correct("4 + 3 - 2 =", wrong), wrong


def test_hw5_hidden_cases_catch_the_plausible_mistakes():
    """Each answer a hurried student would write fails the hidden cases of its exercise (in-process, no kernel)."""
    def fails(exercise_id, fn):
        ex = spec.exercise(exercise_id)
        for case in spec.draw_cases(ex, 11, public=False):
            expected = spec.as_arrays(ex.reference(**case))
            try:
                actual = spec.as_arrays(fn(**case))
            except (OverflowError, ZeroDivisionError):  # no result: the case scores 0
                return True
            if spec.compare(actual, expected, ex.rtol, ex.atol):
                return True
        return False

    def last_words(response):  # the words after the last ';' word
        words = response.split()
        return words[len(words) - words[::-1].index(";"):] if ";" in words else words

    def value(prompt):
        words = prompt.split()
        return int(words[0]) + sum(int(x) * (1 if op == "+" else -1) for op, x in zip(words[1:-1:2], words[2:-1:2]))

    def population_std(rewards, group_size, scale):  # divides by G, not G − 1
        grouped = rewards.reshape(-1, group_size)  # (B, G)
        centred = grouped - grouped.mean(1, keepdim=True)
        return (centred / (grouped.std(1, keepdim=True, unbiased=False) + 1e-4) if scale else centred).reshape(-1)

    def batch_statistics(rewards, group_size, scale):  # one mean and std for the whole batch
        centred = rewards - rewards.mean()
        return centred / (rewards.std() + 1e-4) if scale else centred

    def token_sums(per_token, mask):
        return torch.where(mask.bool(), per_token, 0.0).sum(1)  # (B,)

    def divided_by(width):  # "constant" with a batch-dependent divisor instead of the generation budget
        def aggregate(per_token, mask, mode, max_tokens):
            sums = token_sums(per_token, mask)
            return {"token_mean": sums.sum() / mask.sum(), "sequence_mean": (sums / mask.sum(1)).mean(),
                    "constant": (sums / width(per_token, mask)).mean()}[mode]
        return aggregate

    mistakes = {
        "hw5.pass_at_k": [lambda n, c, k: 1 - (1 - c / n) ** k,  # the biased plug-in
                          lambda n, c, k: 1 - float(math.comb(n - c, k)) / float(math.comb(n, k))],  # overflows
        "hw5.group_advantages": [population_std, batch_statistics],
        "hw5.aggregate_loss": [
            lambda per_token, mask, mode, max_tokens: (per_token * mask).sum() / mask.sum(),  # one mode for all
            lambda per_token, mask, mode, max_tokens: (per_token.mean() if mode == "token_mean"
                                                       else per_token.mean(1).mean()),  # padding
            divided_by(lambda per_token, mask: mask.sum(1).max()),  # the longest response of this batch
            divided_by(lambda per_token, mask: per_token.shape[1])],  # the padded width (depends on padding)
        "hw5.is_correct": [
            lambda prompt, response: f"answer {value(prompt)}" in response,  # anywhere, not the last segment
            lambda prompt, response: response.split(";")[-1].split() == ["answer", str(value(prompt))],  # ';' glued
            lambda prompt, response: (len(last_words(response)) == 2 and last_words(response)[0] == "answer"
                                      and last_words(response)[1].lstrip("+-").isdigit()
                                      and int(last_words(response)[1]) == value(prompt))],  # accepts "+5", "05"
    }
    for exercise_id, answers in mistakes.items():
        for k, fn in enumerate(answers):
            assert fails(exercise_id, fn), (exercise_id, k)


def test_hw6_masks_are_the_ones_encode_demonstrations_builds(tiny):
    """The two references of hw6 against the package's own encoding of real demonstrations (prompts and
    responses of different lengths, so rows are padded differently)."""
    from rlcourse.rl import sft
    from rlcourse.world.demonstrations import Demonstration

    _, tokenizer = tiny
    demos = [Demonstration("the film was", "good ."), Demonstration("what a", "dull movie ! i would not recommend it ."),
             Demonstration("honestly , the acting in this one was", "fine .")]
    prompt_lengths = torch.tensor([len(tokenizer(d.prompt).input_ids) for d in demos])  # <bos> included
    batch = sft.encode_demonstrations(tokenizer, demos)
    assert not batch["attention_mask"].all()  # some rows are padded
    torch.testing.assert_close(references.response_loss_mask(batch["attention_mask"], prompt_lengths), batch["loss_mask"])
    every = sft.encode_demonstrations(tokenizer, demos, response_only=False)
    torch.testing.assert_close(references.all_token_mask(every["attention_mask"]), every["loss_mask"])
    with pytest.raises(ValueError, match="left-padded"):
        references.all_token_mask(torch.tensor([[1, 1, 0]]))
    with pytest.raises(ValueError, match="prompt_lengths"):
        references.response_loss_mask(torch.tensor([[0, 1, 1]]), torch.tensor([2]))  # no response token left


def test_hw6_hidden_cases_catch_the_plausible_mistakes():
    """Each answer a hurried student would write fails the hidden cases of its exercise (in-process, no kernel);
    the public cases catch them too, so the check cell already says so."""
    def fails(exercise_id, fn, public=False):
        ex = spec.exercise(exercise_id)
        for case in spec.draw_cases(ex, 11, public=public):
            expected = spec.as_arrays(ex.reference(**case))
            try:
                actual = spec.as_arrays(fn(**{k: v.clone() for k, v in case.items()}))
            except (RuntimeError, IndexError):  # no result: the case scores 0
                return True
            if spec.compare(actual, expected, ex.rtol, ex.atol):
                return True
        return False

    def first_real(attention_mask):  # (B, L) 1 at each row's <bos>
        first = torch.zeros_like(attention_mask)
        first[torch.arange(len(attention_mask)), attention_mask.argmax(1)] = 1
        return first

    def shifted(logits, input_ids):  # (B, L-1) log π of token t from the logits at t − 1, done right
        return torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)

    def from_column_0(attention_mask, prompt_lengths):  # as if rows were padded on the right
        return (torch.arange(attention_mask.shape[1])[None, :] >= prompt_lengths[:, None]).long() * attention_mask

    def no_shift(logits, input_ids, loss_mask):  # the logits at t score token t
        logprobs = torch.log_softmax(logits.float(), -1).gather(-1, input_ids[..., None]).squeeze(-1)
        return -(logprobs * loss_mask).sum() / loss_mask.sum()

    def per_row_mean(logits, input_ids, loss_mask):  # each row's mean, then the mean over rows
        mask = loss_mask[:, 1:].float()
        return (-(shifted(logits, input_ids) * mask).sum(1) / mask.sum(1)).mean()

    def mask_not_shifted(logits, input_ids, loss_mask):  # the mask of position t−1: the last prompt token in, <eos> out
        mask = loss_mask[:, :-1].float()
        return -(shifted(logits, input_ids) * mask).sum() / mask.sum()

    def log_of_softmax(logits, input_ids, loss_mask):  # underflows at logits of ±1000
        logprobs = torch.log(torch.softmax(logits[:, :-1], -1)).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
        mask = loss_mask[:, 1:].float()
        return -(logprobs * mask).sum() / mask.sum()

    def over_every_position(logits, input_ids, loss_mask):  # masked sum over the padded batch's size
        mask = loss_mask[:, 1:].float()
        return -(shifted(logits, input_ids) * mask).sum() / mask.numel()

    mistakes = {
        "hw6.response_loss_mask": [
            lambda attention_mask, prompt_lengths: attention_mask,  # what input_ids != pad gives: the prompt too
            lambda attention_mask, prompt_lengths: attention_mask - first_real(attention_mask),  # only <bos> out
            from_column_0,  # ignores the left padding
            lambda attention_mask, prompt_lengths: (attention_mask.cumsum(1) >= prompt_lengths[:, None]).long(),  # <bos> not counted
            lambda attention_mask, prompt_lengths: torch.cat([(attention_mask.cumsum(1) > prompt_lengths[:, None])[:, :-1].long(),
                                                              torch.zeros_like(attention_mask[:, :1])], 1)],  # no <eos>
        "hw6.sft_loss": [no_shift, per_row_mean, mask_not_shifted, log_of_softmax, over_every_position,
                         lambda logits, input_ids, loss_mask: -(shifted(logits, input_ids) * loss_mask[:, 1:]).sum()],  # a sum
        "hw6.all_token_mask": [
            lambda attention_mask: attention_mask,  # <bos> kept
            lambda attention_mask: torch.cat([torch.zeros_like(attention_mask[:, :1]), attention_mask[:, 1:]], 1),  # column 0
            lambda attention_mask: torch.cat([attention_mask[:, 1:], torch.zeros_like(attention_mask[:, :1])], 1)],  # wrong way
    }
    for exercise_id, answers in mistakes.items():
        for k, fn in enumerate(answers):
            assert fails(exercise_id, fn), (exercise_id, k)
            assert fails(exercise_id, fn, public=True), (exercise_id, k, "public")


def test_count_weights_and_biases_against_the_parameter_list(tiny):
    model, _ = tiny
    weights, biases = references.count_weights_and_biases(model)
    names = dict(model.named_parameters())
    assert biases == sum(p.numel() for n, p in names.items() if n.endswith("bias")) > 0
    assert weights + biases == sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- what a student sees


def test_check_cell_lines(capsys):
    def not_yet(logits, labels):
        raise NotImplementedError("replace this line with your code")

    def naive(logits, labels):  # underflows on the public case with logits of ±1000
        return torch.log(torch.softmax(logits, -1)).gather(-1, labels[..., None]).squeeze(-1)

    def wrong_shape(logits, labels):
        return logits.sum(-1)[:, :1]

    checks.check("hw1.token_logprobs", not_yet)
    checks.check("hw1.token_logprobs", naive)
    checks.check("hw1.token_logprobs", wrong_shape)
    checks.check("hw1.token_logprobs", lambda logits, labels: torch.full(labels.shape, float("nan")))
    checks.check("hw1.token_logprobs", 3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("hw1.token_logprobs: not implemented yet: replace the `raise NotImplementedError` in "
                        "token_logprobs with your code.")
    assert lines[1].startswith("hw1.token_logprobs: public case 4: inf in the result. Hint: you need each position's log-softmax")
    assert lines[2].startswith("hw1.token_logprobs: public case 1: shape (") and "expected (" in lines[2]
    assert lines[3].startswith("hw1.token_logprobs: public case 1: NaN in the result. Hint:")
    assert lines[4].startswith("hw1.token_logprobs: expected the function token_logprobs, got a int")
    assert len(lines) == 5


def test_public_and_hidden_cases_differ():
    for ex in spec.EXERCISES.values():
        if ex.kind == "function":
            public, hidden = spec.draw_cases(ex, 7, public=True), spec.draw_cases(ex, 7, public=False)
            assert repr(public) != repr(hidden), ex.id


# ----------------------------------------------------------------------------- the grader on the homeworks


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hw1_policy", "hw2_reward_model", "hw4_ppo", "hw5_verifiable", "hw6_sft"])
def test_solutions_full_marks_exercises_zero(tmp_path, name):
    """The solution scores full marks; the released exercise scores 0 everywhere. For hw2 and hw4 the
    exercise's training answer is a lazy one (no training / lr 1e-6 for 2 steps): the threshold must bite."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "solution.ipynb").write_bytes((ROOT / "solutions" / f"{name}.ipynb").read_bytes())
    exercise_nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    lazy = LAZY_TRAINING.get(name)
    if lazy:
        (index,) = build.answer_cells(exercise_nb)[lazy[0]]
        exercise_nb.cells[index].source = lazy[1]
    nbformat.write(exercise_nb, subs / "exercise.ipynb")
    limits = grader.Limits(sandbox=sandbox.problem() is None)  # unconfined only where the OS cannot confine
    rows = grader.grade(ROOT / "solutions" / f"{name}.ipynb", [subs], tmp_path / "grades", jobs=2, seed=99,
                        limits=limits, progress=False)
    solution = [r for r in rows if r["student"] == "solution"]
    exercise = {r["exercise"]: (r["points"], r["status"]) for r in rows if r["student"] == "exercise"}
    assert [r["points"] for r in solution] == [r["max"] for r in solution] and len(solution) >= 4, solution
    assert exercise == {r["exercise"]: (0.0, "wrong" if lazy and r["exercise"] == lazy[0] else "not-implemented")
                        for r in solution}, exercise


LAZY_TRAINING = {
    "hw2_reward_model": ("hw2.train_reward_model", "def fit_reward_model(rm, tokenizer, pairs, num_epochs=3, lr=1e-3):\n"
                                                   "    rm.eval()  # no training: the head stays at chance"),
    "hw4_ppo": ("hw4.train", "def make_config():\n    return loops.RLOOConfig(num_steps=2, num_prompts=4, group_size=2, "
                             "max_new_tokens=24, lr=1e-6)"),
}


def test_failure_hints_guide_without_giving_the_answer():
    """A hint says where to look, never the code or the passing configuration (issue 12, item 12):
    no code lines, no library API names, and no settings or numbers in the training hints (the old hw4.train
    hint, "return e.g. loops.RLOOConfig(num_steps=30, …, lr=2e-3, kl_coef=0.02)", fails all three)."""
    import re

    from rlcourse.grading import spec

    for ex in spec.EXERCISES.values():
        hint = ex.hint
        assert not re.search(r"\breturn (e\.g\. )?[\w.]+\(|\bfor \w+ in \w|\n", hint), (ex.id, hint)  # no code lines to copy
        assert not re.search(r"\b(torch|F|np|numpy|loops|rewards|reward_model|losses|advantages)\.\w", hint), (ex.id, hint)
        if ex.kind in ("train_policy", "train_reward_model"):
            assert not re.search(r"\b\w+\s*=\s*[\w.\-]+", hint), (ex.id, hint)  # name=value: a setting to copy
            setting = r"\d+(\.\d+)?e-\d+|\b\d+\s*(steps|epochs|prompts|samples|tokens|pairs)\b|\b(lr|learning rate|kl_coef|β)\D{0,12}\d"
            assert not re.search(setting, hint), (ex.id, hint)  # no learning rates, step counts or sizes to copy
