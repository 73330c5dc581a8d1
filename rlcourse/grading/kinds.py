"""The four kinds of graded exercise, each in one place: its inputs, its verdicts and its pass rule.

An :class:`~rlcourse.grading.spec.Exercise` has a ``kind``; :func:`kind_of` maps it to one small
class here, and both sides of grading ask that class only:

- the student's **check cell** (:func:`rlcourse.grading.check`): :meth:`Kind.check` runs the
  public cases in the student's own process and returns one line of feedback;
- the **grader** (:mod:`rlcourse.grading.grader`): :meth:`Kind.prepare` writes the hidden inputs
  for the kernel before it starts, and :meth:`Kind.verdict` judges, in the grader's process,
  the plain data the kernel wrote back.

How each kind runs *inside* the sandboxed kernel is the runner of the same name in
:data:`rlcourse.grading.kernel.RUNNERS`: the kernel never imports ``rlcourse``, so that half
cannot live here (``tests/test_grading.py`` checks that the two tables name the same kinds).

A training exercise passes when its measured figures are finite and within the target:
:func:`within` is that rule, used by the check cell and the grader alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from pathlib import Path
from typing import NamedTuple

import torch

from rlcourse.grading import explain, spec
from rlcourse.grading.explain import MEMORY_WORDS, PROCESS_REASON

MAX_RESULT_BYTES = 50_000_000  # the largest result file the grader reads back
DEFAULT_MEMORY_BYTES = 3_000_000_000  # the sandbox's default memory cap (execute.Limits.memory_bytes)
NO_FUNCTION = "no function was defined"  # what the kernel's harness records when the answer defined none


class Verdict(NamedTuple):
    """What the grader decided about one exercise."""

    fraction: float  # of the exercise's points, in [0, 1]
    reason: str  # one line for the gradebook and the feedback table
    detail: tuple[str, ...] = ()  # Markdown lines for the feedback file (the failing case, expected vs received)
# hw4's configs may not ask for more than this (the grader trains from them in its own process)
POLICY_BUDGET = {"num_prompts": 16, "group_size": 8, "max_new_tokens": 32, "num_epochs": 4, "num_minibatches": 8}


# ----------------------------------------------------------------------------- the pass rule


def within(value, low: float | None = None, high: float | None = None) -> bool:
    """The pass rule of a measured figure: a finite number with ``low ≤ value ≤ high`` (either bound may be absent).

    NaN and ±inf never pass, whatever the bounds: a training run that diverged earns nothing.

    Example:
        >>> within(0.7, low=0.65), within(float("nan"), low=0.65), within(float("-inf"), high=15.0)
        (True, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def policy_passes(outcome: dict) -> bool:
    """hw4's target: gold reward at least ``POLICY_TARGET["gold_reward"]``, KL at most ``["max_kl"]``, both finite."""
    target = spec.POLICY_TARGET
    return within(outcome["gold_reward"], low=target["gold_reward"]) and within(outcome["kl"], high=target["max_kl"])


# ----------------------------------------------------------------------------- measurements (grader and check cell)


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


def held_out_accuracy(rm, tokenizer, seed: int, n_pairs: int = 200) -> float:
    """Share of gold-ordered held-out pairs (|Δ gold| > 0.2) that ``rm`` ranks like the gold reward."""
    from rlcourse.reward import reward_model

    pairs = spec.preference_pairs(n_pairs, seed=seed + 1, beta=None, min_gap=0.2)
    chosen = reward_model.reward_scores(rm, tokenizer, pairs.chosen)  # (N,)
    rejected = reward_model.reward_scores(rm, tokenizer, pairs.rejected)  # (N,)
    return float((chosen > rejected).double().mean())


def policy_outcome(model, tokenizer, seed: int) -> dict:
    """Gold reward and KL to the shipped model of ``model`` on 100 held-out prompts drawn from ``seed``."""
    from rlcourse.rl import loops
    from rlcourse.model.loading import load_policy

    ref_model, _ = load_policy()
    result = loops.evaluate(model, tokenizer, ref_model=ref_model, num_prompts=100, max_new_tokens=24, seed=seed)
    return {"gold_reward": result["gold/reward"], "kl": result["objective/kl"]}


def policy_config(data):
    """The real loops config from plain data (class name and fields); ValueError with one sentence when it
    is not a loops config within the budget. The grader trains from it; the check cell checks the same."""
    from rlcourse.rl import loops

    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ValueError("make_config() did not return a loops config")
    cls = getattr(loops, str(data.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, loops.LoopConfig)):
        raise ValueError(f"make_config() returned a {data.get('class')!r}, not a loops config")
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    fields = data["fields"]
    for name, value in fields.items():
        if name not in defaults or type(value) is not type(defaults[name]):
            raise ValueError(f"make_config()'s field {name!r} is not a {cls.__name__} field of the right type")
    config = cls(**fields)
    if config.num_steps > spec.POLICY_TARGET["max_steps"]:
        raise ValueError(f"num_steps {config.num_steps} is above the budget of {spec.POLICY_TARGET['max_steps']}")
    for name, most in POLICY_BUDGET.items():
        if getattr(config, name) > most:
            raise ValueError(f"{name} {getattr(config, name)} is above the grader's budget of {most}")
    return config


# ----------------------------------------------------------------------------- reading the kernel's results


def limit_reason(error: str, memory_bytes: int = DEFAULT_MEMORY_BYTES) -> str | None:
    """The sandbox limit an error shows (the kernel's text only labels a zero; it never earns a point)."""
    return explain.limit_reason(error, memory_bytes)


def status_word(ok: bool, reason: str) -> str:
    """A verdict's gradebook status."""
    if ok:
        return "ok"
    if reason == "not implemented yet":
        return "not-implemented"
    return "memory-limit" if MEMORY_WORDS in reason else "process-limit" if PROCESS_REASON in reason else "wrong"


def _no_result_reason(outputs: Path, ex: spec.Exercise, default: str, memory_bytes: int) -> str:
    """'not implemented yet' when the harness saw NotImplementedError, else a limit or the exception's last
    line with ``default`` (the kernel's text only labels a zero)."""
    try:
        done = json.loads((outputs / f"{ex.id}.done.json").read_text(encoding="utf-8"))
        error = str(done.get("errors", {}).get("all", ""))
    except (OSError, ValueError, AttributeError):
        error = ""
    if error.startswith("NotImplementedError"):
        return "not implemented yet"
    if error == NO_FUNCTION:
        return f"{NO_FUNCTION}: run your answer cell and check that it defines {ex.function}"
    if limit := limit_reason(error, memory_bytes):
        return limit
    return f"{default}: {explain.last_line(error)}" if error else default


def _load_result(path: Path):
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise ValueError("the result file is too large")
    return load_file(str(path))


# ----------------------------------------------------------------------------- the kinds


class Kind:
    """One kind of exercise. ``name`` is ``Exercise.kind`` and the key of its runner in ``kernel.RUNNERS``."""

    name = ""
    trains = False  # its harness cell may run for the exercise's own ``time_limit``

    def prepare(self, ex: spec.Exercise, seed: int, inputs: Path):
        """Grader, before the kernel starts: write what the kernel needs; return what :meth:`verdict` needs."""
        return None

    def verdict(self, ex: spec.Exercise, prepared, outputs: Path, seed: int,
                memory_bytes: int = DEFAULT_MEMORY_BYTES) -> Verdict:
        """Grader, after the kernel: the :class:`Verdict` from the kernel's plain outputs (``memory_bytes``:
        the sandbox's memory cap, which the feedback names when it stopped the student's code)."""
        raise NotImplementedError

    def check(self, ex: spec.Exercise, fn) -> str:
        """Check cell, in the student's process: one line of feedback on ``fn`` (public cases only)."""
        raise NotImplementedError


class Function(Kind):
    """A function of tensors and numbers, compared with the reference case by case."""

    name = "function"

    def __init__(self):
        self._models: dict = {}  # model arguments built once per grader process
        self._expected: dict = {}  # (exercise, cases) -> the reference's results, see expected()

    def prepare(self, ex, seed, inputs):
        cases = spec.draw_cases(ex, seed, public=False)
        write_inputs(ex.id, cases, inputs)
        return cases

    def _model_for(self, arg: spec.ModelArg):
        key = json.dumps(arg.config, sort_keys=True)
        if key not in self._models:
            self._models[key] = spec.build_model(arg)
        return self._models[key]

    def expected(self, ex: spec.Exercise, cases: list[dict]) -> list[list[torch.Tensor]]:
        """The reference's results on ``cases`` (kept per grader process: every submission of a batch has the
        same hidden cases, drawn from the batch's seed, so the reference runs once per batch, not per student)."""
        key = (ex.id, _cases_key(cases))
        if key not in self._expected:
            if len(self._expected) > 64:  # a long-lived process (a notebook calling check) stays bounded
                self._expected.clear()
            self._expected[key] = [spec.as_arrays(ex.reference(**{
                k: (self._model_for(v) if isinstance(v, spec.ModelArg) else v.clone() if isinstance(v, torch.Tensor)
                    else v) for k, v in case.items()})) for case in cases]
        return self._expected[key]

    def verdict(self, ex, cases, outputs, seed, memory_bytes=DEFAULT_MEMORY_BYTES):
        """Compare the kernel's numbers with the reference on every case; on a failure, explain the smallest
        failing case (its inputs, expected vs received where they differ, the tolerance)."""
        done = json.loads((outputs / f"{ex.id}.done.json").read_text() or "{}")
        errors = done.get("errors", {}) if isinstance(done, dict) else {}
        results = _load_result(outputs / f"{ex.id}.safetensors") or {}
        failures = []  # (case index, reason, detail lines)
        for i, (case, expected) in enumerate(zip(cases, self.expected(ex, cases))):
            actual = [results[f"c{i}.o{j}"] for j in range(len(expected) + 1) if f"c{i}.o{j}" in results]
            if not actual:
                error = str(errors.get(str(i), errors.get("all", "no result")))
                if error.startswith("NotImplementedError"):
                    return Verdict(0.0, "not implemented yet")
                if error == NO_FUNCTION:
                    return Verdict(0.0, f"{NO_FUNCTION}: run your answer cell and check that it defines {ex.function}")
                failures.append((i, _missing_case_reason(i, error, memory_bytes), _inputs_detail(i, case)))
            elif problem := spec.compare(actual, expected, ex.rtol, ex.atol):
                failures.append((i, f"hidden case {i + 1}: {problem}",
                                 explain.value_detail(i + 1, case, actual, expected, ex.rtol, ex.atol)))
        if not failures:
            return Verdict(1.0, f"all {len(cases)} hidden cases match the reference")
        i, reason, detail = min(failures, key=lambda f: (explain.case_size(cases[f[0]]), f[0]))  # the smallest
        return Verdict(0.0, f"{reason} ({len(failures)} of {len(cases)} hidden cases failed)", tuple(detail))

    def check(self, ex, fn):
        cases = spec.draw_cases(ex, spec.PUBLIC_SEED, public=True)
        for i, case in enumerate(cases, start=1):
            expected = spec.as_arrays(ex.reference(**{k: (spec.build_model(v) if isinstance(v, spec.ModelArg) else v)
                                                      for k, v in case.items()}))
            try:
                kwargs = {k: (spec.build_model(v) if isinstance(v, spec.ModelArg) else v) for k, v in case.items()}
                actual = spec.as_arrays(fn(**{k: (v.clone() if isinstance(v, torch.Tensor) else v)
                                              for k, v in kwargs.items()}))
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


def _missing_case_reason(i: int, error: str, memory_bytes: int) -> str:
    """Why hidden case ``i`` has no result: a sandbox limit, or the exception's last line (the hidden
    inputs are shown in the feedback anyway when they are small enough to read)."""
    if limit := limit_reason(error, memory_bytes):
        return f"hidden case {i + 1}: {limit}"
    if error == "no result":
        return f"hidden case {i + 1}: no result ({error}): run your answer cell and check that it defines the function"
    return f"hidden case {i + 1}: your function raised {explain.last_line(error)}: call it on these inputs in your notebook"


def _inputs_detail(i: int, case: dict) -> list[str]:
    return [f"- hidden case {i + 1}, inputs:"] + explain.describe_case(case)


def _cases_key(cases: list[dict]) -> str:
    """A fingerprint of hidden cases (their values), so that cached reference results are never reused for others."""
    import hashlib

    digest = hashlib.sha256()
    for case in cases:
        for name, value in sorted(case.items()):
            digest.update(name.encode())
            if isinstance(value, torch.Tensor):
                digest.update(f"{value.dtype}{tuple(value.shape)}".encode() + value.contiguous().numpy().tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


def write_inputs(exercise_id: str, cases: list[dict], inputs: Path) -> None:
    """Write ``cases`` (kwargs dicts) as safetensors + a JSON layout; models as plain descriptions
    (what ``kernel._run_function`` reads)."""
    from safetensors.torch import save_file

    tensors, layout = {}, []
    for i, case in enumerate(cases):
        entry = {}
        for name, value in case.items():
            if isinstance(value, torch.Tensor):
                tensors[f"c{i}.{name}"] = value.contiguous()
                entry[name] = {"tensor": f"c{i}.{name}"}
            elif isinstance(value, spec.ModelArg):
                entry[name] = {"model": value.config}
            else:
                entry[name] = {"value": value}
        layout.append(entry)
    save_file(tensors, str(inputs / f"{exercise_id}.safetensors"))
    (inputs / f"{exercise_id}.json").write_text(json.dumps({"cases": layout}))


class Quiz(Kind):
    """Plain answers (``{"q1": 0, …}``); a share of the points per right answer."""

    name = "quiz"

    def verdict(self, ex, prepared, outputs, seed, memory_bytes=DEFAULT_MEMORY_BYTES):
        path = outputs / f"{ex.id}.json"
        if not path.is_file():
            return Verdict(0.0, _no_result_reason(outputs, ex, "no answers (quiz_answers() raised or did not return)",
                                                  memory_bytes))
        try:
            answers = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Verdict(0.0, "the answers were not plain JSON values")
        correct, total, problem = spec._quiz_points(spec.homework_of(ex.id), answers)
        return Verdict(correct / total, problem or f"{correct} of {total} questions right")

    def check(self, ex, fn):
        correct, total, problem = spec._quiz_points(spec.homework_of(ex.id), fn())
        if problem:
            return problem
        return "pass (all answers correct)." if correct == total else f"{correct} of {total} answers correct. Hint: {ex.hint}"


class TrainRewardModel(Kind):
    """The student's training function fits the reward model in the kernel; the grader measures the weights."""

    name = "train_reward_model"
    trains = True

    def verdict(self, ex, prepared, outputs, seed, memory_bytes=DEFAULT_MEMORY_BYTES):
        from safetensors.torch import load_model

        from rlcourse.reward import reward_model

        path = outputs / f"{ex.id}.safetensors"
        if not path.is_file():
            return Verdict(0.0, _no_result_reason(
                outputs, ex, "no trained reward model was saved (training raised or did not finish)", memory_bytes))
        rm, tokenizer = reward_model.load_reward_model(seed=0)
        load_model(rm, str(path), strict=True)
        accuracy = held_out_accuracy(rm, tokenizer, seed)
        ok = within(accuracy, low=spec.RM_ACCURACY)
        return Verdict(float(ok), f"held-out accuracy {accuracy:.2f} ({'≥' if ok else '<'} {spec.RM_ACCURACY:.2f} needed)")

    def check(self, ex, fn):
        from rlcourse.reward import reward_model

        rm, tokenizer = reward_model.load_reward_model(seed=0)
        with one_thread():
            fn(rm, tokenizer, spec.training_pairs())
            accuracy = held_out_accuracy(rm, tokenizer, spec.PUBLIC_SEED)
        verdict = "pass" if within(accuracy, low=spec.RM_ACCURACY) else "not yet"
        return (f"{verdict}: accuracy {accuracy:.2f} on public held-out pairs (need {spec.RM_ACCURACY:.2f}). "
                + ("The grader measures it on hidden pairs." if verdict == "pass" else f"Hint: {ex.hint}"))


class TrainPolicy(Kind):
    """``make_config()`` returns a loops config; it is trained from (as plain data) and measured."""

    name = "train_policy"
    trains = True

    def verdict(self, ex, prepared, outputs, seed, memory_bytes=DEFAULT_MEMORY_BYTES):
        """Train from the student's config **here** (plain data; the kernel never holds the loops), then measure."""
        path = outputs / f"{ex.id}.json"
        if not path.is_file():
            return Verdict(0.0, _no_result_reason(
                outputs, ex, "no config came back (make_config() raised or returned something else)", memory_bytes))
        try:
            config = policy_config(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as err:
            return Verdict(0.0, str(err))
        ok, figures = self._train_and_measure(config, seed)
        return Verdict(float(ok), figures + " on hidden prompts")

    def check(self, ex, fn):
        from rlcourse.rl import loops

        config = fn()
        if not isinstance(config, loops.LoopConfig):
            return f"make_config() returned a {type(config).__name__}; return a loops config. Hint: {ex.hint}"
        try:  # the grader's checks of the config, on the same plain data the kernel would send it
            config = policy_config({"class": type(config).__name__, "fields": dataclasses.asdict(config)})
        except ValueError as err:
            return f"{err}."
        ok, figures = self._train_and_measure(config, spec.PUBLIC_SEED)
        return f"{'pass' if ok else 'not yet'}: {figures} on public prompts." + ("" if ok else f" Hint: {ex.hint}")

    @staticmethod
    def _train_and_measure(config, seed: int) -> tuple[bool, str]:
        from rlcourse.rl import loops

        with one_thread():
            result = loops.train(config, device="cpu", progress=False)
            outcome = policy_outcome(result["model"].eval(), result["tokenizer"], seed)
        target = spec.POLICY_TARGET
        return policy_passes(outcome), (f"gold reward {outcome['gold_reward']:.2f} (need ≥ {target['gold_reward']:.2f}), "
                                        f"KL {outcome['kl']:.1f} nats (need ≤ {target['max_kl']:.0f})")


KINDS: dict[str, Kind] = {k.name: k for k in (Function(), Quiz(), TrainRewardModel(), TrainPolicy())}


def kind_of(ex: spec.Exercise) -> Kind:
    """The kind of ``ex``, or one clear sentence when the spec names a kind no code handles."""
    if ex.kind not in KINDS:
        raise ValueError(f"exercise {ex.id!r} has kind {ex.kind!r}, which the grader does not know; "
                         f"use one of: {', '.join(KINDS)} (rlcourse/grading/kinds.py).")
    return KINDS[ex.kind]


__all__ = ["Kind", "KINDS", "Verdict", "kind_of", "within", "policy_passes", "policy_config", "held_out_accuracy",
           "policy_outcome", "one_thread", "status_word", "limit_reason", "write_inputs", "POLICY_BUDGET"]
