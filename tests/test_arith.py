"""The verifiable world (rlcourse.world.arith) and the shipped tiny-math model: checker, split, pass@k, tokenizer, model."""

import doctest
import itertools
import json
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from rlcourse.model import loading, math_eval, pretraining
from rlcourse.world import arith
from rlcourse.world.arith import Problem

P = Problem((4, 3, 2), ("+", "-"))  # 4 + 3 - 2 = 5


@pytest.fixture(scope="module")
def tiny_math():
    return loading.load_math_policy()


# ----------------------------------------------------------------------------- problems


def test_problem_text_value_solution_and_round_trip():
    assert (P.text, P.value, P.num_operands) == ("4 + 3 - 2 =", 5, 3)
    assert P.solution() == "4 + 3 = 7 ; 7 - 2 = 5 ; answer 5"
    assert P.solution(checks=True) == "4 + 3 = 7 ; check 7 - 3 = 4 ; 7 - 2 = 5 ; check 5 + 2 = 7 ; answer 5"
    q = Problem((0, 9, 9, 9, 9, 9), ("-",) * 5)
    assert (q.value, q.running_values()) == (-45, [-9, -18, -27, -36, -45])
    assert Problem.from_text(q.text) == q and Problem.from_text(P.text) == P


@pytest.mark.parametrize("operands, ops, needle", [
    ((4,), (), "2 to 6 operands"),
    ((1,) * 7, ("+",) * 6, "2 to 6 operands"),
    ((4, 10), ("+",), "single-digit"),
    ((4, -1), ("+",), "single-digit"),
    ((4, 3.0), ("+",), "single-digit"),
    ((4, 3), ("*",), "ops must be 1 of '\\+' or '-'"),
    ((4, 3, 2), ("+",), "ops must be 2 of"),
])
def test_bad_problems_say_what_is_wrong(operands, ops, needle):
    with pytest.raises(ValueError, match=needle):
        Problem(operands, ops)


@pytest.mark.parametrize("text", ["4 + 3", "4 + 3 - =", "4 * 3 =", "14 + 3 =", "4 + 3 = 7", "", "=", "4 =", "٤ + 3 ="])
def test_from_text_refuses_what_is_not_a_problem(text):
    with pytest.raises(ValueError, match="is not a problem"):
        Problem.from_text(text)


def test_split_is_fixed_disjoint_and_about_a_fifth():
    every3 = [Problem((a, b, c), (o1, o2)) for a, b, c in itertools.product(range(10), repeat=3)
              for o1 in "+-" for o2 in "+-"]
    test = [p for p in every3 if arith.split_of(p) == "test"]
    assert 0.17 <= len(test) / len(every3) <= 0.23  # 4,000 problems, expected share 0.2
    train = {p for seed in range(3) for p in arith.sample_problems(2000, seed=seed)}
    held = {p for seed in range(3) for p in arith.sample_problems(500, seed=seed, split="test")}
    assert train and held and not train & held
    assert all(arith.split_of(p) == "train" for p in train) and all(arith.split_of(p) == "test" for p in held)
    assert arith.sample_problems(50, seed=7) == arith.sample_problems(50, seed=7)
    assert arith.sample_problems(50, seed=7) != arith.sample_problems(50, seed=8)


def test_sampled_problems_cover_the_operand_counts_and_digits():
    problems = arith.sample_problems(3000, seed=0)
    counts = {m: sum(p.num_operands == m for p in problems) for m in range(2, 7)}
    assert set(counts) == {2, 3, 4, 5, 6} and min(counts.values()) > 450, counts  # uniform: ~600 each
    assert {x for p in problems for x in p.operands} == set(range(10))
    assert {op for p in problems for op in p.ops} == {"+", "-"}
    assert all(p.num_operands == 4 for p in arith.sample_problems(100, seed=1, num_operands=4))
    with pytest.raises(ValueError, match="num_operands must be None"):
        arith.sample_problems(5, seed=0, num_operands=7)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        arith.sample_problems(5, seed=0, split="val")
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        arith.sample_problems(0, seed=0)


def test_held_out_problems_are_distinct_test_problems_of_every_count():
    problems = arith.held_out_problems(per_count=50, seed=0)
    assert len(set(problems)) == len(problems) and all(arith.split_of(p) == "test" for p in problems)
    counts = [sum(p.num_operands == m for p in problems) for m in range(2, 7)]
    n_test_2 = sum(arith.split_of(Problem((a, b), (o,))) == "test" for a in range(10) for b in range(10) for o in "+-")
    assert counts == [min(50, n_test_2), 50, 50, 50, 50]
    assert arith.held_out_problems(per_count=50, seed=0) == problems


# ----------------------------------------------------------------------------- the checker, by hand


@pytest.mark.parametrize("text, steps, answer, correct, well_formed", [
    ("4 + 3 = 7 ; 7 - 2 = 5 ; answer 5", [True, True, True], 5, True, True),
    ("4 + 3 = 7 ; check 7 - 3 = 4 ; 7 - 2 = 5 ; check 5 + 2 = 7 ; answer 5", [True] * 5, 5, True, True),
    # a slip in step 1 carried on: only step 1 is wrong, and the answer
    ("4 + 3 = 8 ; 8 - 2 = 6 ; answer 6", [False, True, True], 6, False, True),
    # two slips that cancel: outcome right, process wrong
    ("4 + 3 = 8 ; 8 - 2 = 5 ; answer 5", [False, False, True], 5, True, True),
    # the other operation; the wrong operand; a skipped step; one step too many
    ("4 - 3 = 1 ; 1 - 2 = -1 ; answer -1", [False, True, True], -1, False, True),
    ("4 + 2 = 6 ; 6 - 2 = 4 ; answer 4", [False, True, True], 4, False, True),
    ("4 + 3 = 7 ; answer 7", [True, False], 7, False, True),
    ("4 + 3 = 7 ; 7 - 2 = 5 ; 5 + 0 = 5 ; answer 5", [True, True, False, False], 5, True, True),
    # a bare right answer: outcome 1, no valid step
    ("answer 5", [False], 5, True, True),
    # checks: true but not the inverse; the inverse but false; before any step; after a slip
    ("4 + 3 = 7 ; check 7 + 3 = 10 ; 7 - 2 = 5 ; answer 5", [True, False, True, True], 5, True, True),
    ("4 + 3 = 7 ; check 7 - 3 = 5 ; 7 - 2 = 5 ; answer 5", [True, False, True, True], 5, True, True),
    ("check 7 - 3 = 4 ; 4 + 3 = 7 ; 7 - 2 = 5 ; answer 5", [False, True, True, True], 5, True, True),
    ("4 + 3 = 8 ; check 8 - 3 = 5 ; 8 - 2 = 6 ; answer 6", [False, False, True, True], 6, False, True),
    # the answer must be the last segment and equal the last value written
    ("4 + 3 = 7 ; 7 - 2 = 5 ; answer 6", [True, True, False], 6, False, True),
    ("answer 5 ; 4 + 3 = 7 ; 7 - 2 = 5", [False, True, True], None, False, False),
    ("answer 5 ; answer 5", [False, False], 5, True, True),
    # malformed: never an exception, never an answer unless the last segment is one
    ("", [], None, False, False),
    ("answer", [False], None, False, False),
    ("4 + 3 = 7 ; 7 - 2 = 5 ;", [True, True, False], None, False, False),
    ("4 + 3 = 7 ; 7 - 2 = 5 ; answer 5 5", [True, True, False], None, False, False),
    # an unreadable step breaks the chain: the next step is not the problem's next operation from 4
    ("4 + 3 = seven ; 7 - 2 = 5 ; answer 5", [False, False, False], 5, True, False),
    ("4 + 3 = 07 ; 7 - 2 = 5 ; answer +5", [False, False, False], None, False, False),
    ("4 - 4 = -0 ; answer 0", [False, False], 0, False, False),
    ("4 + 3 = ٧ ; 7 - 2 = 5 ; answer ٥", [False, False, False], None, False, False),
    ("4 + 3 = 7 7 - 2 = 5 answer 5", [False], None, False, False),
    ("; ; ;", [False] * 4, None, False, False),
    ("<unk> <eos> = = ; check ; answer answer", [False] * 3, None, False, False),
])
def test_grade_response_on_hand_worked_cases(text, steps, answer, correct, well_formed):
    grade = arith.grade_response(P, text)
    assert grade == arith.Grade(steps, answer, correct, well_formed)
    assert arith.check_steps(P, text) == steps and arith.final_answer(text) == answer
    assert arith.is_correct(P, text) == correct
    assert arith.process_reward(P, text) == [float(s) for s in steps]
    assert arith.outcome_reward([P], [text]) == [float(correct)]


def test_parse_response_gives_kinds_numbers_and_word_spans():
    text = "4 + 3 = 7 ; check 7 - 3 = 4 ; oops ; answer 7"
    steps = arith.parse_response(text)
    assert [s.kind for s in steps] == ["compute", "check", "malformed", "answer"]
    assert steps[0][1:5] == (4, "+", 3, 7) and steps[1][1:5] == (7, "-", 3, 4) and steps[3].result == 7
    words = text.split()
    assert [words[a:b] for a, b in (s.span for s in steps)] == [
        ["4", "+", "3", "=", "7"], ["check", "7", "-", "3", "=", "4"], ["oops"], ["answer", "7"]]
    with pytest.raises(ValueError, match="a response must be a string"):
        arith.parse_response(None)
    with pytest.raises(ValueError, match="problem must be an arith.Problem"):
        arith.grade_response("4 + 3 =", "answer 7")
    with pytest.raises(ValueError, match="same length"):
        arith.outcome_reward([P, P], ["answer 5"])


def test_checker_agrees_with_the_truth_on_many_noisy_solutions():
    """The exact solution is valid everywhere; all steps valid implies the right answer; the outcome
    is the answer alone; and random token soup never raises."""
    rng = random.Random(0)
    vocab = arith.vocabulary() + ["<unk>", "", "x"]
    n_wrong = n_cancel = 0
    for _ in range(2000):
        p = arith.sample_problem(rng)
        assert all(arith.check_steps(p, p.solution())) and all(arith.check_steps(p, p.solution(checks=True)))
        text = arith.sample_worked_solution(p, rng)
        g = arith.grade_response(p, text)
        assert g.well_formed and g.answer == int(text.split()[-1])
        assert g.correct == (g.answer == p.value)
        if all(g.steps):
            assert g.correct
        n_wrong += not g.correct
        n_cancel += g.correct and not all(g.steps)
        soup = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30)))
        arith.grade_response(p, soup)
    assert 400 < n_wrong < 1200 and n_cancel > 0  # the solver slips often, and sometimes its slips cancel


# ----------------------------------------------------------------------------- pass@k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_matches_brute_force_enumeration_of_subsets():
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert arith.pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (n, c, k)
    assert arith.pass_at_k(32, 8, 1) == pytest.approx(8 / 32)  # pass@1 is the share correct
    assert arith.pass_at_k(200, 0, 100) == 0.0 and arith.pass_at_k(200, 101, 100) == 1.0


@pytest.mark.parametrize("n, c, k, needle", [(4, 5, 1, "c \\(correct samples\\)"), (4, -1, 1, "c \\(correct"),
                                             (4, 1, 5, "k must be between 1 and n=4"), (4, 1, 0, "k must be"),
                                             (4.0, 1, 1, "must be ints")])
def test_pass_at_k_refuses_impossible_counts(n, c, k, needle):
    with pytest.raises(ValueError, match=needle):
        arith.pass_at_k(n, c, k)


def test_evaluate_policy_refuses_a_k_above_the_samples_before_sampling():
    with pytest.raises(ValueError, match="pass@k needs at least k samples per problem"):
        math_eval.evaluate_policy(None, None, arith.held_out_problems(1), num_samples=8, ks=(1, 16))


def test_pass_at_k_by_operands_weighs_every_count_the_same():
    problems = [Problem((1, 2), ("+",)), Problem((1, 1), ("+",)), Problem((1, 2, 3), ("+", "+"))]
    correct = [[True, False], [False, False], [True, True]]
    report = arith.pass_at_k_by_operands(problems, correct, ks=(1, 2))
    assert report["by_operands"][2] == {"problems": 2, "pass@k": {1: 0.25, 2: 0.5}}
    assert report["by_operands"][3] == {"problems": 1, "pass@k": {1: 1.0, 2: 1.0}}
    assert report["pass@k"] == {1: 0.625, 2: 0.75}


def test_doctests():
    assert doctest.testmod(arith).failed == 0


# ----------------------------------------------------------------------------- tokenizer and shipped model


def test_tokenizer_round_trips_every_token_the_world_can_produce():
    shipped = loading.load_tokenizer(loading.MATH_MODEL_PATH)
    built = loading.build_math_tokenizer()
    assert shipped.get_vocab() == built.get_vocab()
    assert (shipped.pad_token_id, shipped.bos_token_id, shipped.eos_token_id) == (0, 1, 2)
    text = " ".join(arith.vocabulary())
    ids = shipped(text)["input_ids"]
    assert ids[0] == shipped.bos_token_id and shipped.unk_token_id not in ids and len(ids) == len(arith.vocabulary()) + 1
    assert shipped.decode(ids, skip_special_tokens=True) == text
    vocab = set(arith.vocabulary())
    rng = random.Random(1)
    for _ in range(3000):  # every word of problems and noisy solutions (checks, slips, negatives) is a token
        p = arith.sample_problem(rng, split=rng.choice(["train", "test"]))
        assert set(f"{p.text} {arith.sample_worked_solution(p, rng)}".split()) <= vocab


def test_shipped_math_model_is_small_hf_llama_with_a_card_that_states_its_pass_at_k(tiny_math):
    path = loading.MATH_MODEL_PATH
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md",
            "training_stats.json"} <= names
    assert sum(p.stat().st_size for p in path.iterdir()) < 4 * 2**20
    model, tokenizer = tiny_math
    assert model.config.model_type == "llama" and model.config.attention_bias and model.config.mlp_bias
    assert len(tokenizer) == model.config.vocab_size == len(arith.vocabulary()) + 4
    stats = json.loads((path / "training_stats.json").read_text())
    assert loading.count_parameters(model) == stats["parameters"]
    card = (path / "README.md").read_text()
    evaluation = stats["evaluation"]
    for k, value in evaluation["pass@k"].items():
        assert f"pass@{k}" in card and f"{value:.3f}" in card
    for needle in ["rlcourse pretrain-math", f"{stats['num_steps']} steps", f"{stats['val_loss']:.4f}",
                   f"{evaluation['num_samples']} responses sampled per problem at temperature 1"]:
        assert needle in card
    p1, p4, p16 = (evaluation["pass@k"][k] for k in ("1", "4", "16"))
    assert 0.3 <= p1 <= 0.6 and p16 >= p1 + 0.25  # RL has something to learn, and sampling more helps
    by = evaluation["by_operands"]
    assert by["2"]["pass@k"]["1"] > by["6"]["pass@k"]["1"]  # more operands, more slips
    plain = AutoModelForCausalLM.from_pretrained(path)
    ids = tokenizer(["4 + 3 - 2 ="], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(plain(**ids).logits, model(**ids).logits)


def test_shipped_math_model_samples_parse_and_are_sometimes_right(tiny_math):
    """Tolerant statistics of 4 samples on each of 60 held-out problems (not exact tokens)."""
    model, tokenizer = tiny_math
    problems = arith.held_out_problems(per_count=12, seed=1)
    responses = math_eval.sample_responses(model, tokenizer, problems, num_samples=4, seed=0)
    grades = [arith.grade_response(p, t) for p, row in zip(problems, responses) for t in row]
    well_formed = sum(g.well_formed for g in grades) / len(grades)
    correct = sum(g.correct for g in grades) / len(grades)
    assert well_formed >= 0.9, [t for row in responses for t in row][:5]
    assert 0.2 <= correct <= 0.8, correct
    starts = [t.split()[:2] == [str(p.operands[0]), p.ops[0]] for p, row in zip(problems, responses) for t in row]
    assert sum(starts) / len(starts) >= 0.9  # the first step starts from the first operand


def test_cli_has_the_reproduce_command(monkeypatch, capsys):
    """`rlcourse pretrain-math` with no options reruns the shipped recipe into the shipped folder."""
    from rlcourse import cli

    calls = []
    monkeypatch.setattr(pretraining, "pretrain_math", lambda **kw: calls.append(kw) or {
        "val_loss": 0.0, "seconds": 0.0, "evaluation": {"pass@k": {1: 0.5}}})
    assert cli.main(["pretrain-math"]) == 0
    stats = json.loads((loading.MATH_MODEL_PATH / "training_stats.json").read_text())
    (kw,) = calls
    assert kw["out_dir"] == loading.MATH_MODEL_PATH
    assert (kw["num_steps"], kw["seed"], kw["threads"]) == (stats["num_steps"], stats["seed"], stats["threads"])
    assert str(loading.MATH_MODEL_PATH) in capsys.readouterr().out


def test_a_stopped_math_pretrain_is_never_written_over_the_shipped_model(monkeypatch):
    saved = []
    monkeypatch.setattr(pretraining, "write_model", lambda *a: saved.append(a))
    threads = torch.get_num_threads()
    result = pretraining.pretrain_math(stop_after=2, batch_size=4, progress=False)
    assert torch.get_num_threads() == threads  # the caller's thread count is given back
    assert saved == [] and result["evaluation"] is None and len(result["history"]) == 2


# tiny-gpt's band (tests/test_models.py records why). Measured for tiny-math on the recording machine: the
# same recipe 0.0 (bitwise); broken recipes, largest relative move of a window: check steps after 20% of steps
# instead of 15% 3.0e-3, lr 1% low 7.7e-3.
LOSS_CURVE_RTOL = 1e-3


@pytest.mark.slow
def test_pretrain_math_reproduces_the_shipped_loss_curve(tmp_path):
    """The shipped recipe's first 100 steps, on the full run's schedule, give the recorded loss curve
    (about 10 s on one thread)."""
    shipped = json.loads((loading.MATH_MODEL_PATH / "training_stats.json").read_text())
    curve = shipped["loss_curve"]
    result = pretraining.pretrain_math(out_dir=tmp_path, num_steps=shipped["num_steps"], seed=shipped["seed"],
                                  lr=shipped["lr"], batch_size=shipped["batch_size"], threads=shipped["threads"],
                                  noise=arith.SolverNoise(**shipped["noise"]), stop_after=curve["steps"], progress=False)
    got = torch.tensor(pretraining.loss_curve(result["history"], curve["window"]), dtype=torch.float64)
    torch.testing.assert_close(got, torch.tensor(curve["mean_loss"], dtype=torch.float64), rtol=LOSS_CURVE_RTOL, atol=0)
    written = json.loads((tmp_path / "training_stats.json").read_text())
    assert written["steps_trained"] == curve["steps"] and written["evaluation"] is None


def test_majority_vote_hand_cases_and_against_a_naive_count():
    assert arith.majority_vote(["answer 4", "answer 7", "answer 7", "2 + 2 = 4 ; answer 4", "answer 4"]) == 4
    assert arith.majority_vote(["answer 7", "answer 4", "answer 4", "answer 7"]) == 4  # 4 reached 2 first
    assert arith.majority_vote(["garbage", "answer", ""]) is None
    assert arith.majority_vote([]) is None
    with pytest.raises(ValueError, match="list of strings"):
        arith.majority_vote("answer 5")
    rng = random.Random(0)
    for _ in range(200):
        answers = [rng.choice([None, 1, 2, 3]) for _ in range(rng.randint(0, 9))]
        texts = [f"answer {a}" if a is not None else "no answer" for a in answers]
        given = [a for a in answers if a is not None]
        if not given:
            assert arith.majority_vote(texts) is None
            continue
        top = max(given.count(a) for a in set(given))
        # naive: the first position at which some answer's running count reaches the top count
        seen, expected = {}, None
        for a in given:
            seen[a] = seen.get(a, 0) + 1
            if seen[a] == top:
                expected = a
                break
        assert arith.majority_vote(texts) == expected
