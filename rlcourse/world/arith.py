"""The verifiable world: arithmetic problems whose every step and final answer can be checked.

A problem is 2-6 single-digit operands joined by ``+`` and ``-``; its text is the prompt, and a
response works it out left to right, one step per operation, then states the answer::

    prompt:    4 + 3 - 2 =
    response:  4 + 3 = 7 ; 7 - 2 = 5 ; answer 5
    longer:    4 + 3 = 7 ; check 7 - 3 = 4 ; 7 - 2 = 5 ; answer 5

Texts are words separated by single spaces (``text.split()`` gives the tokens, one per token of
the math model's word-level tokenizer): integers (``-7`` is one word), ``+``, ``-``, ``=``,
``;``, ``answer`` and ``check``. A response is *segments* separated by ``;``:

- a **compute step** ``a op b = c``: the next operation of the problem, applied to the running
  value (the operand before it for the first step, else the result the previous compute step
  wrote);
- a **check step** ``check c op' b = a``: the inverse of the compute step just before it,
  redundant but valid, so a response can be longer than it needs to be (and length can drift
  under RL);
- the **answer** ``answer n``, the last segment.

Checking is exact and never raises on a response: a segment that does not parse is a wrong
step, a response that does not end with ``answer n`` has no final answer (:func:`final_answer`
is ``None``). Each step is judged *locally*, given what the response wrote before it, so the
step that introduced an error is the one marked wrong, and the steps that carry its value on
are not (:func:`check_steps`). All steps valid implies a correct answer; the converse fails
when errors cancel, or when a bare ``answer 5`` guesses right: the gap between outcome and
process rewards.

Problems are split once and for all into train and held-out (test) sets by a hash of their
text (:func:`split_of`), so the split is the same on every machine and for every seed.
:func:`sample_worked_solution` writes solutions with realistic mistakes (the pretraining
corpus of the math model); :func:`pass_at_k` is the unbiased estimator of Chen et al. 2021.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import NamedTuple

from rlcourse.utils import check

__all__ = [
    "MAX_OPERANDS",
    "MAX_RESPONSE_TOKENS",
    "MIN_OPERANDS",
    "NUMBER_RANGE",
    "Grade",
    "Problem",
    "SolverNoise",
    "Step",
    "answer_reward",
    "check_steps",
    "final_answer",
    "grade_response",
    "held_out_problems",
    "is_correct",
    "outcome_reward",
    "parse_response",
    "pass_at_k",
    "pass_at_k_by_operands",
    "process_reward",
    "sample_problem",
    "sample_problems",
    "sample_worked_solution",
    "split_of",
    "vocabulary",
]

MIN_OPERANDS, MAX_OPERANDS = 2, 6
DIGITS = range(10)  # operands are single digits 0-9
OPS = ("+", "-")
INVERSE = {"+": "-", "-": "+"}
# Every integer the world writes: running values of a correct solution lie in [-45, 54]; the
# noisy solver's slips (±2 at most per step, or the other operation) stay within ±75. The
# tokenizer has one token per integer in this range.
NUMBER_RANGE = (-99, 99)
TEST_FRACTION = 0.2  # share of all problems held out (by hash of the text), for every operand count
SPLITS = ("train", "test")


def apply(left: int, op: str, right: int) -> int:
    """``left op right`` for op in ``+``, ``-``."""
    return left + right if op == "+" else left - right


def vocabulary() -> list[str]:
    """Every word a problem or response of this world can contain: operators, keywords, integers.

    Example:
        >>> vocabulary()[:7]
        ['+', '-', '=', ';', 'answer', 'check', '-99']
    """
    return ["+", "-", "=", ";", "answer", "check"] + [str(i) for i in range(NUMBER_RANGE[0], NUMBER_RANGE[1] + 1)]


# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """An arithmetic problem: operands x_0 … x_{m−1} (single digits) and the m−1 operations between them.

    Example:
        >>> p = Problem((4, 3, 2), ("+", "-"))
        >>> p.text, p.value, p.solution()
        ('4 + 3 - 2 =', 5, '4 + 3 = 7 ; 7 - 2 = 5 ; answer 5')
    """

    operands: tuple[int, ...]
    ops: tuple[str, ...]

    def __post_init__(self):
        operands, ops = tuple(self.operands), tuple(self.ops)
        object.__setattr__(self, "operands", operands)
        object.__setattr__(self, "ops", ops)
        check(MIN_OPERANDS <= len(operands) <= MAX_OPERANDS,
              f"a problem has {MIN_OPERANDS} to {MAX_OPERANDS} operands, got {len(operands)}: {operands}.")
        check(all(type(x) is int and x in DIGITS for x in operands),
              f"operands must be single-digit ints 0-9, got {operands}.")
        check(len(ops) == len(operands) - 1 and all(op in OPS for op in ops),
              f"ops must be {len(operands) - 1} of '+' or '-' (one between each pair of operands), got {ops}.")

    @property
    def num_operands(self) -> int:
        return len(self.operands)

    @property
    def text(self) -> str:
        """The prompt, e.g. ``"4 + 3 - 2 ="``."""
        words = [str(self.operands[0])]
        for op, x in zip(self.ops, self.operands[1:]):
            words += [op, str(x)]
        return " ".join(words + ["="])

    def running_values(self) -> list[int]:
        """The value after each operation, left to right: ``[7, 5]`` for 4 + 3 - 2."""
        values, value = [], self.operands[0]
        for op, x in zip(self.ops, self.operands[1:]):
            value = apply(value, op, x)
            values.append(value)
        return values

    @property
    def value(self) -> int:
        """The correct final answer."""
        return self.running_values()[-1]

    def solution(self, checks: bool = False) -> str:
        """The correct worked response; ``checks=True`` adds a check step after every compute step."""
        segments, left = [], self.operands[0]
        for op, x, result in zip(self.ops, self.operands[1:], self.running_values()):
            segments.append(f"{left} {op} {x} = {result}")
            if checks:
                segments.append(f"check {result} {INVERSE[op]} {x} = {left}")
            left = result
        return " ; ".join(segments + [f"answer {self.value}"])

    @classmethod
    def from_text(cls, text: str) -> Problem:
        """Parse a prompt such as ``"4 + 3 - 2 ="`` (the inverse of :attr:`text`)."""
        check(isinstance(text, str), f"text must be a string such as '4 + 3 - 2 =', got {type(text).__name__}.")
        words = text.split()
        ok = len(words) >= 4 and len(words) % 2 == 0 and words[-1] == "="
        ok = ok and all(re.fullmatch(r"[0-9]", w) for w in words[:-1:2]) and all(w in OPS for w in words[1:-1:2])
        check(ok, f"'{text}' is not a problem: expected single digits joined by + and - and ending in '=', "
                  "e.g. '4 + 3 - 2 ='.")
        return cls(tuple(int(w) for w in words[:-1:2]), tuple(words[1:-1:2]))


def split_of(problem: Problem) -> str:
    """``"test"`` for the held-out problems (≈ ``TEST_FRACTION`` of them, by a hash of the text), else ``"train"``.

    The split depends on the problem alone: it is the same on every machine, for every seed.
    """
    digest = hashlib.sha256(problem.text.encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") < TEST_FRACTION * 2**32 else "train"


def _check_split(split: str) -> None:
    check(split in SPLITS, f"split must be 'train' or 'test', got {split!r}.")


def _check_num_operands(num_operands) -> None:
    check(num_operands is None or (type(num_operands) is int and MIN_OPERANDS <= num_operands <= MAX_OPERANDS),
          f"num_operands must be None (any) or an int from {MIN_OPERANDS} to {MAX_OPERANDS}, got {num_operands!r}.")


def sample_problem(rng: random.Random, num_operands: int | None = None, split: str = "train") -> Problem:
    """A uniformly random problem of ``split``; ``num_operands=None`` draws the count uniformly from 2-6."""
    _check_split(split)
    _check_num_operands(num_operands)
    while True:  # rejection: ~1.25 draws for train, ~5 for test
        m = num_operands if num_operands is not None else rng.randint(MIN_OPERANDS, MAX_OPERANDS)
        problem = Problem(tuple(rng.randrange(10) for _ in range(m)), tuple(rng.choice(OPS) for _ in range(m - 1)))
        if split_of(problem) == split:
            return problem


def sample_problems(n: int, seed: int, split: str = "train", num_operands: int | None = None) -> list[Problem]:
    """``n`` problems of ``split`` drawn with ``random.Random(seed)`` (independently: repeats possible)."""
    check(type(n) is int and n >= 1, f"n must be an int >= 1, got {n!r}.")
    rng = random.Random(seed)
    return [sample_problem(rng, num_operands, split) for _ in range(n)]


def held_out_problems(per_count: int = 50, seed: int = 0) -> list[Problem]:
    """Distinct held-out problems: ``per_count`` for each operand count 2-6 (all of them if fewer exist).

    With 2 operands only 200 problems exist, about 40 of them held out; the list is sorted by
    operand count, then in drawing order.
    """
    check(type(per_count) is int and per_count >= 1, f"per_count must be an int >= 1, got {per_count!r}.")
    rng, problems = random.Random(seed), []
    for m in range(MIN_OPERANDS, MAX_OPERANDS + 1):
        universe = 10**m * 2 ** (m - 1)
        if universe <= 50_000:  # small enough to list: take a sample of all test problems
            everything = [Problem(tuple(int(d) for d in f"{i:0{m}d}"), tuple(OPS[(j >> b) & 1] for b in range(m - 1)))
                          for i in range(10**m) for j in range(2 ** (m - 1))]
            pool = [p for p in everything if split_of(p) == "test"]
            problems += rng.sample(pool, min(per_count, len(pool)))
        else:
            chosen: dict[Problem, None] = {}
            while len(chosen) < per_count:
                chosen.setdefault(sample_problem(rng, m, "test"))
            problems += list(chosen)
    return problems


# ----------------------------------------------------------------------------- a noisy solver (the corpus)


@dataclass(frozen=True)
class SolverNoise:
    """How often the corpus's solver slips: its worked solutions are the math model's pretraining data."""

    step_error: float = 0.08  # chance that a compute step is wrong ...
    carry_error: float = 0.22  # ... plus this when the true result crosses a multiple of ten or zero (carries, borrows)
    off_by_two: float = 0.2  # share of slips that miss by 2 (the rest miss by 1, or use the other operation)
    wrong_op: float = 0.2  # share of slips that apply the other operation (+ for -, - for +)
    check_rate: float = 0.15  # chance of a check step after a compute step (redundant: it certifies the step)


def _crosses(left: int, right: int) -> bool:
    """True when going from ``left`` to ``right`` crosses a multiple of ten or zero (a carry or borrow)."""
    return left // 10 != right // 10 or (left < 0) != (right < 0) or (left == 0) != (right == 0)


def sample_worked_solution(problem: Problem, rng: random.Random, noise: SolverNoise = SolverNoise()) -> str:
    """A worked response with the mistakes of a careless solver; a slip carries its value on.

    Each compute step is wrong with probability ``step_error`` (+ ``carry_error`` on a carry or
    borrow): off by ±1, off by ±2, or the other operation. A check step (probability
    ``check_rate``) inverts the step as written, exactly, so after a slip it does not give back
    the left operand (an invalid check). The answer is the last value written.

    Example:
        >>> sample_worked_solution(Problem((4, 3, 2), ("+", "-")), random.Random(0))
        '4 + 3 = 7 ; 7 - 2 = 5 ; answer 5'
    """
    segments, left = [], problem.operands[0]
    for op, x in zip(problem.ops, problem.operands[1:]):
        result = apply(left, op, x)
        written_op = op
        if rng.random() < noise.step_error + noise.carry_error * _crosses(left, result):
            kind = rng.random()
            if kind < noise.wrong_op:
                written_op = INVERSE[op]
                result = apply(left, written_op, x)
            else:
                result += rng.choice((-1, 1)) * (2 if kind < noise.wrong_op + noise.off_by_two else 1)
        segments.append(f"{left} {written_op} {x} = {result}")
        if rng.random() < noise.check_rate:
            segments.append(f"check {result} {INVERSE[written_op]} {x} = {apply(result, INVERSE[written_op], x)}")
        left = result
    text = " ; ".join(segments + [f"answer {left}"])
    lo, hi = NUMBER_RANGE
    assert all(lo <= int(w) <= hi for w in text.split() if _INT.fullmatch(w)), f"a number out of range in {text}"
    return text


# ----------------------------------------------------------------------------- the checker


_INT = re.compile(r"0|-?[1-9][0-9]*")  # canonical ASCII integers only: no "+3", "007", "-0", "٣"


class Step(NamedTuple):
    """One ``;``-separated segment of a response, parsed.

    ``kind`` is ``"compute"``, ``"check"``, ``"answer"`` or ``"malformed"``; ``left op right =
    result`` for compute and check steps (``None`` otherwise); ``result`` holds the number of an
    answer; ``span`` = (first, last + 1) word indices of the segment in ``response.split()``
    (a process reward lands on word ``span[1] - 1``, the step's last token).
    """

    kind: str
    left: int | None
    op: str | None
    right: int | None
    result: int | None
    span: tuple[int, int]


def _parse_segment(words: list[str], start: int) -> Step:
    span = (start, start + len(words))
    is_int = [bool(_INT.fullmatch(w)) for w in words]
    if len(words) == 2 and words[0] == "answer" and is_int[1]:
        return Step("answer", None, None, None, int(words[1]), span)
    kind, body, body_is_int = "compute", words, is_int
    if words[:1] == ["check"]:
        kind, body, body_is_int = "check", words[1:], is_int[1:]
    if len(body) == 5 and body_is_int[0] and body[1] in OPS and body_is_int[2] and body[3] == "=" and body_is_int[4]:
        return Step(kind, int(body[0]), body[1], int(body[2]), int(body[4]), span)
    return Step("malformed", None, None, None, None, span)


def parse_response(text: str) -> list[Step]:
    """Split a response at ``;`` and parse each segment; never raises on a string.

    Example:
        >>> [s.kind for s in parse_response("4 + 3 = 7 ; check 7 - 3 = 4 ; 7 - 2 = 5 ; answer 5")]
        ['compute', 'check', 'compute', 'answer']
        >>> [s.kind for s in parse_response("4 + = 7 ; answer")]
        ['malformed', 'malformed']
    """
    check(isinstance(text, str), f"a response must be a string, got {type(text).__name__}.")
    words, steps, start = text.split(), [], 0
    if not words:
        return []
    for i, w in enumerate(words + [";"]):
        if w == ";":
            steps.append(_parse_segment(words[start:i], start))
            start = i + 1
    return steps


def final_answer(text: str) -> int | None:
    """The integer of the last segment when it reads ``answer n``; ``None`` otherwise (no answer, malformed).

    Example:
        >>> final_answer("4 + 3 = 7 ; answer 7"), final_answer("4 + 3 = 7 ; answer"), final_answer("answer 7 ;")
        (7, None, None)
    """
    steps = parse_response(text)
    return steps[-1].result if steps and steps[-1].kind == "answer" else None


class Grade(NamedTuple):
    """The verdict on one response: per-segment validity, the final answer, and whether it is right."""

    steps: list[bool]  # one per ;-separated segment, the answer segment included (check_steps)
    answer: int | None  # final_answer
    correct: bool  # answer == problem.value
    well_formed: bool  # every segment parses and the last one is the answer


def grade_response(problem: Problem, text: str) -> Grade:
    """Judge every segment of ``text`` as a solution of ``problem``, each given the segments before it.

    Rules (r = the running value: x_0 at first, then the result the last compute step wrote):

    - compute ``a op b = c`` is valid iff it is the problem's next operation (its op and operand
      b), a = r, and a op b = c exactly; it then sets r = c and moves to the next operation
      (valid or not), so an error is marked where it is made, not on the steps that carry it;
    - check ``check c op' b = a`` is valid iff it inverts the compute step just before it (c its
      result, op' the inverse op, b its operand, a its left operand) and is true — so a valid
      check certifies that step's arithmetic; it changes nothing;
    - ``answer n`` is valid iff it is the last segment, every operation has been done and n = r;
    - a malformed segment is invalid and changes nothing (so the chain breaks there); a compute
      step after the last operation is invalid.

    Example (the slip is in step 1; step 2 carries it on correctly; the answer is wrong):
        >>> grade_response(Problem((4, 3, 2), ("+", "-")), "4 + 3 = 8 ; 8 - 2 = 6 ; answer 6")
        Grade(steps=[False, True, True], answer=6, correct=False, well_formed=True)
    """
    check(isinstance(problem, Problem), f"problem must be an arith.Problem, got {type(problem).__name__}.")
    steps = parse_response(text)
    running, k, previous, valid = problem.operands[0], 0, None, []
    for i, s in enumerate(steps):
        if s.kind == "compute":
            ok = (k < len(problem.ops) and s.op == problem.ops[k] and s.right == problem.operands[k + 1]
                  and s.left == running and apply(s.left, s.op, s.right) == s.result)
            running, k, previous = s.result, k + 1, s
        elif s.kind == "check":
            ok = (previous is not None and s.left == previous.result and s.op == INVERSE[previous.op]
                  and s.right == previous.right and s.result == previous.left
                  and apply(s.left, s.op, s.right) == s.result)
        elif s.kind == "answer":
            ok = i == len(steps) - 1 and k == len(problem.ops) and s.result == running
        else:
            ok = False
        valid.append(ok)
    answer = steps[-1].result if steps and steps[-1].kind == "answer" else None
    well_formed = bool(steps) and answer is not None and all(s.kind != "malformed" for s in steps)
    return Grade(valid, answer, answer == problem.value, well_formed)


def check_steps(problem: Problem, text: str) -> list[bool]:
    """Per-segment validity of a response (the answer segment included): see :func:`grade_response`.

    Example:
        >>> check_steps(Problem((4, 3, 2), ("+", "-")), "4 + 3 = 7 ; check 7 - 3 = 4 ; 7 - 2 = 5 ; answer 5")
        [True, True, True, True]
    """
    return grade_response(problem, text).steps


def is_correct(problem: Problem, text: str) -> bool:
    """True iff the response ends with ``answer n`` and n is the problem's value (steps not looked at)."""
    return grade_response(problem, text).correct


def outcome_reward(problems: list[Problem], texts: list[str]) -> list[float]:
    """The verifiable (outcome) reward: 1.0 for a correct final answer, else 0.0, one per response.

    Example:
        >>> p = Problem((4, 3), ("+",))
        >>> outcome_reward([p, p, p], ["4 + 3 = 7 ; answer 7", "answer 7", "4 + 3 = 8 ; answer 8"])
        [1.0, 1.0, 0.0]
    """
    check(isinstance(problems, (list, tuple)) and isinstance(texts, (list, tuple)) and len(problems) == len(texts),
          f"problems and texts must be lists of the same length (one problem per response), "
          f"got {type(problems).__name__} and {type(texts).__name__}.")
    return [float(is_correct(p, t)) for p, t in zip(problems, texts)]


def answer_reward(texts: list[str]):
    """:func:`outcome_reward` of full texts (prompt and response joined, what ``loops.train`` passes a
    reward function), as a ``(N,)`` float tensor: the loops' default reward for the task "arith".

    The prompt is everything up to and including the first ``=``.

    Example:
        >>> answer_reward(["4 + 3 = 4 + 3 = 7 ; answer 7", "4 + 3 = answer 8"])
        tensor([1., 0.])
    """
    import torch

    check(isinstance(texts, (list, tuple)) and all(isinstance(t, str) and "=" in t for t in texts),
          "texts must be a list of 'prompt response' strings whose prompt ends with '=', e.g. '4 + 3 = answer 7'.")
    pairs = [t.split("=", 1) for t in texts]
    return torch.tensor(outcome_reward([Problem.from_text(p + "=") for p, _ in pairs], [r for _, r in pairs]))


def process_reward(problem: Problem, text: str) -> list[float]:
    """The step-level (process) reward: 1.0 per valid segment, 0.0 per invalid one (:func:`check_steps`).

    A response without a final answer has no answer segment, so aggregate with care: e.g. a
    response's process score ``min`` over its segments, counted 0 when ``final_answer`` is None.

    Example:
        >>> process_reward(Problem((4, 3, 2), ("+", "-")), "4 + 3 = 8 ; 8 - 2 = 6 ; answer 6")
        [0.0, 1.0, 1.0]
    """
    return [float(ok) for ok in check_steps(problem, text)]


def majority_vote(texts: list[str]) -> int | None:
    """Self-consistency (Wang et al. 2023): the final answer given most often among ``texts``.

    Responses without a readable answer do not vote; a tie goes to the answer that reached its
    count first (so the result does not depend on dictionary order); ``None`` when no response
    has an answer.

    Example:
        >>> majority_vote(["answer 5", "1 + 1 = 3 ; answer 3", "answer 5", "nonsense", "answer 3"])  # 5 got 2 first
        5
        >>> majority_vote(["answer", "no answer here"]) is None
        True
    """
    check(isinstance(texts, (list, tuple)) and all(isinstance(t, str) for t in texts),
          f"texts must be a list of strings, got {type(texts).__name__}.")
    counts: dict[int, int] = {}
    best, best_count = None, 0
    for answer in map(final_answer, texts):
        if answer is None:
            continue
        counts[answer] = counts.get(answer, 0) + 1
        if counts[answer] > best_count:  # strictly more: the first to reach a count keeps a tie
            best, best_count = answer, counts[answer]
    return best


# ----------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c are correct (Chen et al. 2021, "Codex"):

        pass@k = 1 − C(n−c, k) / C(n, k)  =  1 − Π_{i=n−c+1}^{n} (1 − k / i)

    the chance that k of the n samples drawn without replacement hold at least one correct one
    (the product form avoids huge binomials).

    Example:
        >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 2), pass_at_k(4, 3, 2)
        (0.25, 0.5, 1.0)
    """
    check(all(type(v) is int for v in (n, c, k)), f"n, c and k must be ints, got {n!r}, {c!r}, {k!r}.")
    check(0 <= c <= n, f"c (correct samples) must be between 0 and n={n}, got {c}.")
    check(1 <= k <= n, f"k must be between 1 and n={n} (draw more samples to estimate pass@{k}), got {k}.")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_at_k_by_operands(problems: list[Problem], correct: list[list[bool]], ks=(1, 4, 16)) -> dict:
    """pass@k of each problem (:func:`pass_at_k`), averaged by operand count and over the counts.

    Args:
        problems: P problems; correct: P lists of n booleans (sample j of problem i is right).
        ks: the k's, each at most n.

    Returns:
        a dict: ``"pass@k"`` maps each k to the mean over operand counts of the per-count means, and
        ``"by_operands"`` maps each operand count m to ``{"problems": …, "pass@k": {k: mean}}`` over the
        problems with m operands (each operand count weighs the same in the overall figure, however
        many problems it has).
    """
    check(len(problems) == len(correct) > 0, f"problems and correct must be non-empty lists of the same length, "
                                             f"got {len(problems)} and {len(correct)}.")
    by_count: dict[int, list[dict[int, float]]] = {}
    for problem, row in zip(problems, correct):
        by_count.setdefault(problem.num_operands, []).append({k: pass_at_k(len(row), sum(map(bool, row)), k) for k in ks})
    by_operands = {m: {"problems": len(rows), "pass@k": {k: sum(r[k] for r in rows) / len(rows) for k in ks}}
                   for m, rows in sorted(by_count.items())}
    overall = {k: sum(v["pass@k"][k] for v in by_operands.values()) / len(by_operands) for k in ks}
    return {"pass@k": overall, "by_operands": by_operands}


# ----------------------------------------------------------------------------- the response budget

MAX_RESPONSE_TOKENS = 80  # the longest response the corpus writes: 5 compute + 5 check steps + answer = 67 tokens + EOS
