"""The check cells' feedback: run the public cases and print one line.

``check("hw1.token_logprobs", token_logprobs)`` prints ``pass`` or what is wrong (not
implemented yet, an error, a shape, NaN, values off) with a hint. It runs only the
public cases (a fixed seed, small sizes); it never shows hidden cases, and it is a
learning aid, not the grade: the grader runs its own cases in its own process.
"""

from __future__ import annotations

import contextlib

import torch

from rlcourse.grading import spec


@contextlib.contextmanager
def one_thread():
    """Train the tiny models on one thread: as fast as two on an idle 2-core laptop for matrices this small,
    and many times faster when other programs compete for the cores (2 threads: 136 s, 1 thread: 21 s, measured
    for hw4's 30 RLOO steps on a busy machine). The caller's thread count is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _call(ex: spec.Exercise, fn, case: dict):
    kwargs = {k: (spec.build_model(v) if isinstance(v, spec.ModelArg) else v) for k, v in case.items()}
    kwargs = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    return fn(**kwargs)


def _function_verdict(ex: spec.Exercise, fn) -> str:
    cases = spec.draw_cases(ex, spec.PUBLIC_SEED, public=True)
    for i, case in enumerate(cases, start=1):
        expected = spec.as_arrays(_reference(ex)(**{k: (spec.build_model(v) if isinstance(v, spec.ModelArg) else v)
                                                    for k, v in case.items()}))
        try:
            actual = spec.as_arrays(_call(ex, fn, case))
        except NotImplementedError:
            raise
        except TypeError as err:
            if "returned a" in str(err):
                return f"public case {i}: {err}. Hint: {ex.hint}"
            return f"public case {i} raised TypeError: {err}. Hint: {ex.hint}"
        except Exception as err:  # noqa: BLE001 - the student's error becomes feedback
            return f"public case {i} raised {type(err).__name__}: {err}. Hint: {ex.hint}"
        problem = spec.compare(actual, expected, ex.rtol, ex.atol)
        if problem:
            return f"public case {i}: {problem}. Hint: {ex.hint}"
    return f"pass ({len(cases)} public cases). The grader also runs hidden cases."


def _reference(ex: spec.Exercise):
    return ex.reference


def _quiz_verdict(ex: spec.Exercise, fn) -> str:
    correct, total, problem = spec._quiz_points(spec.homework_of(ex.id), fn())
    if problem:
        return problem
    return "pass (all answers correct)." if correct == total else f"{correct} of {total} answers correct. Hint: {ex.hint}"


def _reward_model_verdict(ex: spec.Exercise, fn) -> str:
    from rlcourse import rewards

    rm, tokenizer = rewards.load_reward_model(seed=0)
    with one_thread():
        fn(rm, tokenizer, spec.training_pairs())
        accuracy = held_out_accuracy(rm, tokenizer, spec.PUBLIC_SEED)
    verdict = "pass" if accuracy >= spec.RM_ACCURACY else "not yet"
    return (f"{verdict}: accuracy {accuracy:.2f} on public held-out pairs (need {spec.RM_ACCURACY:.2f}). "
            + ("The grader measures it on hidden pairs." if verdict == "pass" else f"Hint: {ex.hint}"))


def held_out_accuracy(rm, tokenizer, seed: int, n_pairs: int = 200) -> float:
    """Share of gold-ordered held-out pairs (|Δ gold| > 0.2) that ``rm`` ranks like the gold reward."""
    from rlcourse import rewards

    pairs = spec.preference_pairs(n_pairs, seed=seed + 1, beta=None, min_gap=0.2)
    chosen = rewards.reward_scores(rm, tokenizer, pairs.chosen)  # (N,)
    rejected = rewards.reward_scores(rm, tokenizer, pairs.rejected)  # (N,)
    return float((chosen > rejected).double().mean())


def policy_outcome(model, tokenizer, seed: int) -> dict:
    """Gold reward and KL to the shipped model of ``model`` on 100 held-out prompts drawn from ``seed``."""
    from rlcourse import loops
    from rlcourse.models import load_policy

    ref_model, _ = load_policy()
    result = loops.evaluate(model, tokenizer, ref_model=ref_model, num_prompts=100, max_new_tokens=24, seed=seed)
    return {"gold_reward": result["gold/reward"], "kl": result["objective/kl"]}


def _policy_verdict(ex: spec.Exercise, fn) -> str:
    from rlcourse import loops

    config = fn()
    if not isinstance(config, loops.LoopConfig):
        return f"make_config() returned a {type(config).__name__}; return a loops config. Hint: {ex.hint}"
    target = spec.POLICY_TARGET
    if config.num_steps > target["max_steps"]:
        return f"num_steps {config.num_steps} is above the budget of {target['max_steps']}."
    with one_thread():
        result = loops.train(config, device="cpu", progress=False)
        outcome = policy_outcome(result["model"], result["tokenizer"], spec.PUBLIC_SEED)
    ok = outcome["gold_reward"] >= target["gold_reward"] and outcome["kl"] <= target["max_kl"]
    return (f"{'pass' if ok else 'not yet'}: gold reward {outcome['gold_reward']:.2f} (need ≥ {target['gold_reward']:.2f}), "
            f"KL {outcome['kl']:.1f} nats (need ≤ {target['max_kl']:.0f}) on public prompts."
            + ("" if ok else f" Hint: {ex.hint}"))


def check(exercise_id: str, fn) -> None:
    """Print one line of feedback on ``fn`` for ``exercise_id`` (public cases only)."""
    ex = spec.exercise(exercise_id)
    if not callable(fn):
        print(f"{exercise_id}: expected the function {ex.function}, got a {type(fn).__name__}; run its cell first.")
        return
    verdicts = {"function": _function_verdict, "quiz": _quiz_verdict,
                "train_reward_model": _reward_model_verdict, "train_policy": _policy_verdict}
    try:
        line = verdicts[ex.kind](ex, fn)
    except NotImplementedError:
        line = f"not implemented yet: replace the `raise NotImplementedError` in {ex.function} with your code."
    except Exception as err:  # noqa: BLE001
        line = f"raised {type(err).__name__}: {err}. Hint: {ex.hint}"
    print(f"{exercise_id}: {line}")
