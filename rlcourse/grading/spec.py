"""What each homework exercise is: the function students write, its reference, its test inputs.

One :class:`Exercise` per graded exercise. The same spec serves both sides:

- the student's **check cell** (:func:`rlcourse.grading.check`) runs the public cases, drawn
  from a fixed public seed, and prints one line of feedback;
- the **grader** (:mod:`rlcourse.grading.grader`) draws hidden cases from a secret per-run
  seed, lets the student's kernel evaluate the function on them, and compares the plain
  numbers it wrote with the reference, in the grader's own process.

Points live in the solution notebooks' cell metadata (the instructor's single source); the
rest lives here. Glossary: B rows, T tokens, V vocabulary.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from rlcourse.classroom import quiz, quizbank
from rlcourse.model import policy
from rlcourse.rl import advantages, loops, losses
from rlcourse.world import arith, rewards  # reward_model (transformers): imported lazily
from rlcourse.grading import references
from rlcourse.grading.kernel import as_arrays, build_llama  # one definition, shared with the kernel's harness

if TYPE_CHECKING:
    from rlcourse.reward import reward_model

PUBLIC_SEED = 2024  # public cases: the same for every student, shown by the check cells


@dataclass(frozen=True)
class ModelArg:
    """A model argument the kernel builds itself: the shipped tiny policy, or a fresh Llama from a config."""

    config: dict | None = None  # None: rlcourse.load_policy()'s model; else LlamaConfig(**config), seeded


@dataclass(frozen=True)
class Exercise:
    """One graded exercise."""

    id: str  # "hw1.token_logprobs": homework, dot, name (cell metadata uses it)
    function: str  # the name the student defines in the answer cell
    kind: str  # "function" | "train_reward_model" | "train_policy" | "quiz"
    hint: str  # shown when the answer is wrong; never a hidden input or expected value
    reference: Callable | None = None  # kind "function": the answer, returns a tensor, number or tuple
    cases: Callable[[torch.Generator, bool], list[dict]] | None = None  # (generator, public) -> kwargs dicts
    forbidden: tuple[str, ...] = ()  # reference names an answer may not use ("token_logprobs", ...)
    allowed_imports: tuple[str, ...] = ()  # extra modules an answer may import (beyond torch, math, ...)
    rtol: float = 1e-4
    atol: float = 1e-5
    time_limit: float = 60.0  # seconds for this exercise's harness cell in the grader
    threshold: dict = field(default_factory=dict)  # training exercises: what "pass" means


# ----------------------------------------------------------------------------- case generators


def _sizes(g: torch.Generator, public: bool, low: int, high: int) -> int:
    """A size in [low, high] (public cases stay small so students can print them)."""
    high = min(high, low + 2) if public else high
    return int(torch.randint(low, high + 1, (1,), generator=g))


def _prefix_mask(g: torch.Generator, B: int, T: int) -> torch.Tensor:
    """``(B, T)`` 1 on a random non-empty prefix of each row."""
    lengths = torch.randint(1, T + 1, (B,), generator=g)  # (B,)
    return (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)


def _logprobs(g: torch.Generator, B: int, T: int) -> torch.Tensor:
    return -torch.rand(B, T, generator=g, dtype=torch.float64).float() * 3 - 0.05  # (B, T) in (−3.05, −0.05)


def _token_logprobs_cases(g, public):
    cases = []
    for _ in range(3):
        B, T, V = _sizes(g, public, 1, 4), _sizes(g, public, 1, 6), _sizes(g, public, 3, 12)
        logits = torch.randn(B, T, V, generator=g) * 3  # (B, T, V)
        cases.append({"logits": logits, "labels": torch.randint(0, V, (B, T), generator=g)})
    big = torch.zeros(1, 2, 3)  # huge logits: exp overflows, log-softmax must not
    big[0, 0] = torch.tensor([1000.0, 0.0, -1000.0])
    cases.append({"logits": big, "labels": torch.tensor([[2, 2]])})  # log(softmax) gives -inf here
    return cases


def _sequence_logprob_cases(g, public):
    cases = []
    for _ in range(2):
        B, P, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 5), _sizes(g, public, 1, 6)
        ids = torch.randint(3, 400, (B, P + T), generator=g)  # (B, L) ordinary words, no special tokens
        attention = torch.ones(B, P + T, dtype=torch.long)  # (B, L)
        pad = torch.randint(0, P - 1, (B,), generator=g)  # left padding of each prompt
        attention[torch.arange(P + T)[None, :] < pad[:, None]] = 0
        ids = ids.masked_fill(attention == 0, 0)
        response = torch.zeros_like(attention)
        response[:, P:] = 1  # (B, L) the last T tokens are the response
        cases.append({"model": ModelArg(), "input_ids": ids, "attention_mask": attention, "response_mask": response})
    return cases


def _sampling_cases(g, public):
    cases = []
    for temperature, top_k in ((1.0, 0), (0.5, 0), (2.0, 3), (0.7, 1)):
        B, V = _sizes(g, public, 1, 4), _sizes(g, public, 4, 12)
        if not public:
            temperature = round(float(torch.empty(1).uniform_(0.3, 2.0, generator=g)), 3)
            top_k = int(torch.randint(0, V, (1,), generator=g))
        cases.append({"logits": torch.randn(B, V, generator=g) * 2, "temperature": temperature, "top_k": top_k})
    return cases


def _count_cases(g, public):
    cases = []
    for _ in range(2 if public else 3):
        heads = int(torch.randint(1, 4, (1,), generator=g))
        cases.append({"model": ModelArg({
            "vocab_size": int(torch.randint(10, 60, (1,), generator=g)),
            "hidden_size": 8 * heads, "num_attention_heads": heads, "num_key_value_heads": heads,
            "intermediate_size": int(torch.randint(8, 40, (1,), generator=g)),
            "num_hidden_layers": int(torch.randint(1, 4, (1,), generator=g)),
            "attention_bias": bool(torch.randint(0, 2, (1,), generator=g)),
            "mlp_bias": bool(torch.randint(0, 2, (1,), generator=g)),
            "tie_word_embeddings": bool(torch.randint(0, 2, (1,), generator=g)),
        })})
    return cases


def _pair_cases(g, public, ties: bool):
    cases = []
    for _ in range(3):
        B = _sizes(g, public, 1, 8)
        chosen, rejected = torch.randn(B, generator=g) * 2, torch.randn(B, generator=g) * 2
        if ties:
            rejected[: B // 2] = chosen[: B // 2]
        cases.append({"chosen_rewards": chosen, "rejected_rewards": rejected})
    extreme = torch.tensor([300.0, -300.0])  # margins of ±300: log(sigmoid(x)) underflows to −inf
    cases.append({"chosen_rewards": extreme, "rejected_rewards": -extreme})
    return cases


def _returns_cases(g, public):
    cases = []
    for gamma in (1.0, 0.5, 0.9):
        B, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 7)
        gamma = gamma if public else round(float(torch.rand(1, generator=g)), 3)
        cases.append({"rewards": torch.randn(B, T, generator=g), "mask": _prefix_mask(g, B, T), "gamma": gamma})
    return cases


def _kl_rewards_cases(g, public):
    cases = []
    for kl_coef in (0.0, 0.1, 0.5):
        B, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 7)
        kl_coef = kl_coef if public else round(float(torch.rand(1, generator=g)), 3)
        cases.append({"scores": torch.randn(B, generator=g), "logprobs": _logprobs(g, B, T),
                      "ref_logprobs": _logprobs(g, B, T), "mask": _prefix_mask(g, B, T), "kl_coef": kl_coef})
    return cases


def _gae_cases(g, public):
    cases = []
    for gamma, lam in ((1.0, 1.0), (1.0, 0.0), (0.9, 0.95)):
        B, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 7)
        if not public:
            gamma, lam = (round(float(x), 3) for x in torch.rand(2, generator=g))
        cases.append({"rewards": torch.randn(B, T, generator=g), "values": torch.randn(B, T, generator=g),
                      "mask": _prefix_mask(g, B, T), "gamma": gamma, "lam": lam})
    return cases


def _ppo_cases(g, public):
    cases = []
    for clip_eps in (0.2, 0.1, 0.3):
        B, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 7)
        clip_eps = clip_eps if public else round(float(torch.empty(1).uniform_(0.05, 0.4, generator=g)), 3)
        old = _logprobs(g, B, T)
        cases.append({"logprobs": old + torch.randn(B, T, generator=g) * 0.4, "old_logprobs": old,
                      "advantages": torch.randn(B, T, generator=g), "mask": _prefix_mask(g, B, T), "clip_eps": clip_eps})
    return cases


def _value_cases(g, public):
    cases = []
    for clip_eps in (0.2, 0.5, 0.1):
        B, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 7)
        clip_eps = clip_eps if public else round(float(torch.empty(1).uniform_(0.05, 0.5, generator=g)), 3)
        old = torch.randn(B, T, generator=g)
        cases.append({"values": old + torch.randn(B, T, generator=g) * 0.5, "old_values": old,
                      "returns": torch.randn(B, T, generator=g), "mask": _prefix_mask(g, B, T), "clip_eps": clip_eps})
    return cases


def _k3_cases(g, public):
    cases = []
    for _ in range(3):
        B, T = _sizes(g, public, 1, 4), _sizes(g, public, 2, 7)
        logprobs = _logprobs(g, B, T)
        cases.append({"logprobs": logprobs, "ref_logprobs": logprobs + torch.randn(B, T, generator=g) * 0.5})
    same = _logprobs(g, 1, 3)
    cases.append({"logprobs": same, "ref_logprobs": same.clone()})  # π = π_ref: exactly 0
    return cases


def _pass_at_k_cases(g, public):
    """Counts ``(n, c, k)``: random ones, and the edges: n − c < k (every k-subset holds a correct sample: 1),
    c = 0 (0), and n in the thousands, where C(n, k) overflows a float (C(2000, 1000) ≈ 2·10^600)."""
    cases = []
    for _ in range(3):
        n = _sizes(g, public, 2, 40)
        c, k = (int(torch.randint(lo, n + 1, (1,), generator=g)) for lo in (0, 1))
        cases.append({"n": n, "c": c, "k": k})
    n = _sizes(g, public, 6, 30)
    cases += [{"n": n, "c": n - 2, "k": 3},  # 2 wrong samples, k = 3: every 3-subset holds a correct one
              {"n": n, "c": 0, "k": 2},  # never correct: 0
              {"n": 200, "c": _sizes(g, public, 1, 8), "k": 100}]
    big = 2000 if public else int(torch.randint(1500, 3001, (1,), generator=g))
    cases.append({"n": big, "c": _sizes(g, public, 1, 8), "k": big // 2})  # C(n, k) > 1e308
    return cases


def _random_problem(g, num_operands: int, minus: bool = False) -> arith.Problem:
    """A problem with single-digit operands (all operations '-' when ``minus``, so its value is negative)."""
    operands = tuple(int(x) for x in torch.randint(0, 10, (num_operands,), generator=g))
    if minus:
        operands = (int(torch.randint(0, 3, (1,), generator=g)),) + tuple(max(x, 5) for x in operands[1:])
    ops = tuple("-" if minus or bool(torch.randint(0, 2, (1,), generator=g)) else "+" for _ in operands[1:])
    return arith.Problem(operands, ops)


def _with_wrong_steps(p: arith.Problem) -> str:
    """A worked response whose first step is off by one and whose answer is nevertheless the right value."""
    segments = p.solution().split(" ; ")
    left, op, right, _, result = segments[0].split()
    segments[0] = f"{left} {op} {right} = {int(result) + 1}"
    return " ; ".join(segments)


def _is_correct_cases(g, public):
    """One ``(prompt, response)`` per kind of response; public cases use 2-4 operands, hidden ones 2-6.

    Right (True): the worked solution, with check steps, a bare ``answer v`` (a guess: steps are not
    looked at), wrong steps with the right answer, a second ``answer`` that corrects the first, extra
    whitespace, a negative value. Wrong (False): a wrong answer, no answer, ``answer v ;`` (the last
    segment is empty), the answer before a step, the right answer overwritten by a wrong one, a
    malformed answer (two numbers, a trailing dot, a capital A, ``answer`` alone), a non-canonical
    integer (``+5``, ``05``, ``-0``), ``;`` glued to a word, an empty response, a negative value's absolute value.
    The public cases have every kind too: a verifier that passes them is right in the hidden ones."""
    cases = []

    def problem(minus=False):
        return _random_problem(g, _sizes(g, public, 2, 6), minus)

    def add(p: arith.Problem, response: str):
        cases.append({"prompt": p.text, "response": response})

    p = problem()
    add(p, p.solution())
    add(p, f"{p.solution()[: -len(str(p.value))]}{p.value + 1}")
    p = problem()
    add(p, p.solution(checks=True))
    add(p, " ; ".join(p.solution().split(" ; ")[:-1]))  # steps, no answer
    p = problem()
    add(p, f"answer {p.value}")
    add(p, f"answer {p.value} ;")
    add(p, f"answer {p.value} ; {p.solution().split(' ; ')[0]}")
    p = problem()
    add(p, _with_wrong_steps(p))
    add(p, f"answer {p.value + 2} ; answer {p.value}")
    add(p, f"answer {p.value} ; answer {p.value - 1}")
    p = problem()
    add(p, f"  {p.solution().replace(' ; ', ' ;  ')}\n".replace("answer ", "answer\t"))
    add(p, f"answer {p.value} {p.value}")
    add(p, f"answer {p.value}.")
    add(p, f"Answer {p.value}")
    add(p, "answer")
    add(p, "")
    p = problem()
    v = p.value
    add(p, "answer -0" if v == 0 else f"answer +{v}" if v > 0 else f"answer -0{-v}")
    add(p, f"answer 0{v}" if v >= 0 else f"answer - {-v}")
    add(p, p.solution().replace(" ; answer", " ;answer"))  # '7 ;answer 5': ';' is not a word of its own here
    p = problem(minus=True)
    add(p, p.solution())
    add(p, f"answer {-p.value}")
    return cases


def _group_advantages_cases(g, public):
    """Continuous rewards in several groups, and the verifiable case: 0/1 rewards whose groups hold 0, 1, half,
    all but one and all G correct (all-equal groups must give exactly 0), each with and without the std."""
    cases = []
    for scale in (True, False):
        B, G = _sizes(g, public, 1, 4), _sizes(g, public, 2, 8)
        cases.append({"rewards": torch.randn(B * G, generator=g) * 2, "group_size": G, "scale": scale})
    for scale in (True, False):
        G = 8 if public else _sizes(g, public, 4, 16)
        rows = []
        for correct in (0, 1, G // 2, G - 1, G):
            row = torch.zeros(G)  # (G,)
            row[torch.randperm(G, generator=g)[:correct]] = 1.0
            rows.append(row)
        cases.append({"rewards": torch.cat(rows), "group_size": G, "scale": scale})  # (5 G,)
    return cases


def _aggregate_cases(g, public):
    """Ragged response masks (a long row, a row of one token, the rest random) with garbage on padding, each
    mode once (public) or twice (hidden); every other case pads every row, so the longest response is not T."""
    cases = []
    for i, mode in enumerate(("token_mean", "constant", "sequence_mean") * (1 if public else 2)):
        B, T = _sizes(g, public, 2, 5), _sizes(g, public, 3, 9)
        mask = _prefix_mask(g, B, T)  # (B, T)
        mask[0], mask[1] = 1, 0
        mask[1, 0] = 1  # row 0: every token; row 1: one token
        if i % 2:
            mask[:, -1] = 0  # a padding column: the padded width T is longer than any response
        garbage = torch.randn(B, T, generator=g) * 100  # what padding holds: must never reach the loss
        per_token = torch.where(mask.bool(), torch.randn(B, T, generator=g), garbage)  # (B, T)
        budget = T + int(torch.randint(1, 9, (), generator=g))  # max_new_tokens: never the padded width T
        cases.append({"per_token": per_token, "mask": mask, "mode": mode, "max_tokens": budget})
    return cases


PAD, BOS, EOS = 0, 1, 2  # the course tokenizer's special ids (hw6's batches use them like encode_demonstrations)


def _demonstration_batch(g, public: bool) -> dict[str, torch.Tensor]:
    """A left-padded batch ``<pad>… <bos> prompt response <eos>`` as :func:`rlcourse.rl.sft.encode_demonstrations`
    lays it out: ``input_ids``, ``attention_mask`` and ``prompt_lengths`` (``<bos>`` included), each ``(B, L)`` / ``(B,)``.

    Rows differ in prompt and response length, so the padding differs too: one row is the longest (no
    padding), another is padded and has a longer response (a mean per row is not the token mean); rows shuffled."""
    B = _sizes(g, public, 2, 5)
    prompts = torch.randint(2, 6 if public else 8, (B,), generator=g)  # (B,) <bos> + 1 or more words
    responses = torch.randint(2, 5 if public else 9, (B,), generator=g)  # (B,) 1 or more words + <eos>
    responses[1] = responses[0] + 1 + int(torch.randint(0, 3, (), generator=g))  # rows 0 and 1 differ in length
    longest_other = int((prompts[1:] + responses[1:]).max())
    prompts[0] = longest_other - responses[0] + 1 + int(torch.randint(0, 2, (), generator=g))  # row 0: the longest
    order = torch.randperm(B, generator=g)  # (B,) the special rows anywhere
    prompts, responses = prompts[order], responses[order]
    lengths = prompts + responses  # (B,) real tokens per row
    L = int(lengths.max())
    attention = (torch.arange(L)[None, :] >= (L - lengths)[:, None]).long()  # (B, L) left padding
    ids = torch.randint(3, 60, (B, L), generator=g).masked_fill(attention == 0, PAD)  # (B, L) ordinary words
    rows = torch.arange(B)
    ids[rows, L - lengths] = BOS  # each row's first real token
    ids[:, -1] = EOS  # each row's last token: every response ends
    return {"input_ids": ids, "attention_mask": attention, "prompt_lengths": prompts}


def _response_mask_cases(g, public):
    return [{k: b[k] for k in ("attention_mask", "prompt_lengths")} for b in
            (_demonstration_batch(g, public) for _ in range(3))]


def _all_token_mask_cases(g, public):
    cases = [{"attention_mask": _demonstration_batch(g, public)["attention_mask"]} for _ in range(3)]
    cases.append({"attention_mask": torch.ones(2, 3, dtype=torch.long)})  # no padding at all: column 0 is <bos>
    return cases


def _sft_loss_cases(g, public):
    """Demonstration batches with random logits: three with the response-only mask, one with the all-token mask
    (prompt tokens imitated too), and one with logits of ±1000, where log of a softmax gives −inf."""
    cases = []
    for k in range(5):
        batch = _demonstration_batch(g, public)
        ids, attention = batch["input_ids"], batch["attention_mask"]
        V = 60 + _sizes(g, public, 0, 40)  # ids are below 60
        logits = torch.randn(*ids.shape, V, generator=g) * (1000.0 if k == 4 else 3.0)  # (B, L, V)
        mask = (references.all_token_mask(attention) if k == 3
                else references.response_loss_mask(attention, batch["prompt_lengths"]))  # (B, L)
        cases.append({"logits": logits, "input_ids": ids, "loss_mask": mask})
    return cases


# ----------------------------------------------------------------------------- quizzes

# The questions and their hashed answers live in the package's quiz bank (rlcourse/assets/quizzes.json),
# built by `rlcourse build-quizzes` from the instructor's solutions/quizzes.py; nothing here shows an answer.
# Answers are option texts (a list of texts for an ordering, a dict for a matching), never positions.
QUIZZES: dict[str, list[quiz.Question]] = {hw: quizbank.homework_quiz(hw).questions for hw in ("hw1", "hw2", "hw3", "hw4", "hw5", "hw6")}


def quiz_for(homework: str) -> quiz.Quiz:
    """A fresh widget quiz for ``"hw1"`` … ``"hw6"`` (questions keyed "q1", "q2", …)."""
    if homework not in QUIZZES:
        raise ValueError(f"unknown homework {homework!r}; expected one of {sorted(QUIZZES)}.")
    return quizbank.homework_quiz(homework)


# ----------------------------------------------------------------------------- training data (public)

RM_TRAIN = {"n_pairs": 384, "seed": 0, "min_gap": 0.3}  # the public training pairs of hw2 (noisy labels)
RM_ACCURACY = 0.65  # on held-out pairs ordered by the gold reward (noise-free), |Δ gold| > 0.2; chance is 0.5
POLICY_TARGET = {"gold_reward": 0.30, "max_kl": 15.0, "max_steps": 40}


ANNOTATORS = "annotators"  # preference_pairs' default labels: the course's annotators, reward_model.ANNOTATOR_BETA


def preference_pairs(n_pairs: int, seed: int, beta: float | None | str = ANNOTATORS,
                     min_gap: float = 0.0) -> "reward_model.PreferenceDataset":
    """Pairs of grammar reviews, labelled by the noisy annotators (``beta``, by default the course's
    ``reward_model.ANNOTATOR_BETA``) or by the gold reward (``beta=None``).

    Cheap (no model sampling): the homework trains a reward model in seconds. With
    ``min_gap`` only pairs whose gold rewards differ by more than it are kept.
    """
    from rlcourse.reward import reward_model
    from rlcourse.world import grammar

    if beta == ANNOTATORS:
        beta = reward_model.ANNOTATOR_BETA

    texts = grammar.sample_reviews(6 * n_pairs, seed=seed)
    gold = rewards.gold_reward(texts)  # (2N',)
    a, b, ga, gb = texts[0::2], texts[1::2], gold[0::2], gold[1::2]
    keep = [i for i in range(len(a)) if a[i] != b[i] and abs(float(ga[i] - gb[i])) > min_gap][:n_pairs]
    a, b, ga, gb = [a[i] for i in keep], [b[i] for i in keep], ga[keep], gb[keep]
    if beta is None:
        wins = ga > gb
    else:
        wins = reward_model.label_preferences(ga, gb, beta, torch.Generator().manual_seed(seed))
    return reward_model.PreferenceDataset.from_labels([""] * len(a), a, b, ga, gb, wins)


def training_pairs() -> "reward_model.PreferenceDataset":
    """hw2's training pairs (public): noisy annotator labels on grammar reviews."""
    return preference_pairs(**RM_TRAIN)


# ----------------------------------------------------------------------------- the exercises

def _bradley_terry_loss(**kwargs: Any):
    """``reward_model.bradley_terry_loss``, imported when first graded (reward_model loads transformers, which the
    grader's main process and the static check never need)."""
    from rlcourse.reward import reward_model

    return reward_model.bradley_terry_loss(**kwargs)


def _preference_accuracy(**kwargs: Any):
    """``reward_model.preference_accuracy``, imported when first graded (as above)."""
    from rlcourse.reward import reward_model

    return reward_model.preference_accuracy(**kwargs)


def _first(fn: Callable) -> Callable:
    """The loss of a ``(loss, stats)`` reference: the homework's functions return the loss only."""
    def loss_only(**kwargs: Any):
        return fn(**kwargs)[0]
    loss_only.__name__ = fn.__name__
    return loss_only


EXERCISES: dict[str, Exercise] = {e.id: e for e in [
    Exercise("hw1.token_logprobs", "token_logprobs", "function",
             "you need each position's log-softmax over the vocabulary, read at the label's index; computing "
             "log of softmax in two steps underflows for large logits, so find one function that does both.",
             policy.token_logprobs, _token_logprobs_cases, forbidden=("token_logprobs",)),
    Exercise("hw1.sequence_logprob", "sequence_logprob", "function",
             "the logits at position t score token t+1, so logits and ids are offset by one against each other; "
             "check that the mask you sum with lines up with the shifted ids and covers response tokens only.",
             lambda **kw: policy.sequence_logprob(**kw).detach(), _sequence_logprob_cases,
             forbidden=("sequence_logprob", "token_logprobs", "model_logits", "response_logits")),
    Exercise("hw1.sampling_distribution", "sampling_distribution", "function",
             "the temperature rescales the logits before anything else; tokens outside the top k must end with "
             "probability exactly 0 (top_k = 0 keeps all); each row must sum to 1.",
             references.sampling_distribution, _sampling_cases, forbidden=("sampling_distribution", "next_token_distribution")),
    Exercise("hw1.count_parameters", "count_weights_and_biases", "function",
             "count numbers, not tensors; each parameter's name tells whether it is a bias; a tensor shared by "
             "two modules (tied embeddings) must be counted once.",
             references.count_weights_and_biases, _count_cases, forbidden=("count_parameters", "count_weights_and_biases")),
    Exercise("hw1.quiz", "quiz_answers", "quiz", "re-read lecture notebook 01, try each question in the widget (Check), and copy option texts exactly."),
    Exercise("hw2.bradley_terry_loss", "bradley_terry_loss", "function",
             "the loss is −mean log σ(r_c − r_r); a margin of −300 must give 300, not inf: compute log σ in one "
             "numerically stable step instead of log(sigmoid(x)).",
             _bradley_terry_loss, lambda g, p: _pair_cases(g, p, ties=False), forbidden=("bradley_terry_loss",)),
    Exercise("hw2.preference_accuracy", "preference_accuracy", "function",
             "a pair counts 1 when the chosen reward is higher and ½ on an exact tie; return the mean as a float.",
             _preference_accuracy, lambda g, p: _pair_cases(g, p, ties=True), forbidden=("preference_accuracy",)),
    Exercise("hw2.train_reward_model", "fit_reward_model", "train_reward_model",
             "accuracy near 0.5 means rm did not learn: check that the optimiser holds rm's parameters, that "
             "chosen and rejected are not swapped, and that you loop over all pairs for more than one epoch; "
             "if the loss rises or jumps, lower the learning rate.",
             forbidden=("train_reward_model",), time_limit=240.0, threshold={"accuracy": RM_ACCURACY}),
    Exercise("hw2.quiz", "quiz_answers", "quiz", "re-read lecture notebook 02, try each question in the widget (Check), and copy option texts exactly."),
    Exercise("hw3.discounted_returns", "discounted_returns", "function",
             "G_t needs G_{t+1}, so go from the last token backwards; padding must stay 0 and must not feed its "
             "rewards into the response.",
             advantages.discounted_returns, _returns_cases, forbidden=("discounted_returns",)),
    Exercise("hw3.kl_penalized_rewards", "kl_penalized_rewards", "function",
             "every response token gets the KL term; the score goes to one token only, the last response token of "
             "its row (rows differ in length); padding stays 0.",
             loops.kl_penalized_rewards, _kl_rewards_cases, forbidden=("kl_penalized_rewards", "score")),
    Exercise("hw3.gae", "gae", "function",
             "compute every δ_t first (the value after the last response token counts as 0), then accumulate A "
             "backwards; check λ = 0 (A = δ) and λ = 1 (A = G − V) by hand; padding stays 0.",
             advantages.gae, _gae_cases, forbidden=("gae",)),
    Exercise("hw3.quiz", "quiz_answers", "quiz", "re-read lecture notebook 03, try each question in the widget (Check), and copy option texts exactly."),
    Exercise("hw4.ppo_clip_loss", "ppo_clip_loss", "function",
             "the ratio comes from a difference of log-probs; per token keep the pessimistic (larger) of the "
             "clipped and unclipped losses; average over response tokens only, not over the padded batch.",
             _first(losses.ppo_clip_loss), _ppo_cases, forbidden=("ppo_clip_loss",)),
    Exercise("hw4.value_loss", "value_loss", "function",
             "the clipped value moves at most ε away from old_values; keep the larger squared error per token, "
             "average over response tokens only, and mind the factor ½.",
             _first(losses.value_loss), _value_cases, forbidden=("value_loss",)),
    Exercise("hw4.kl_k3", "kl_k3", "function",
             "check the sign of log r (reference minus policy); every estimate must be ≥ 0 and exactly 0 where "
             "the two log-probs agree.",
             losses.kl_k3, _k3_cases, forbidden=("kl_k3",)),
    Exercise("hw4.train", "make_config", "train_policy",
             "change one field at a time from a loops config: gold reward too low → more steps or a larger lr; "
             "KL too high → a larger kl_coef or a smaller lr; short responses and small batches keep it fast.",
             allowed_imports=("rlcourse.rl.loops",), time_limit=240.0, threshold=POLICY_TARGET),
    Exercise("hw4.quiz", "quiz_answers", "quiz", "re-read lecture notebook 04, try each question in the widget (Check), and copy option texts exactly."),
    Exercise("hw5.pass_at_k", "pass_at_k", "function",
             "pass@k is 1 minus the chance that k samples drawn without replacement from the n are all wrong, "
             "C(n−c, k) / C(n, k), not a power of the share correct; when fewer than k are wrong that chance is 0; "
             "with n in the thousands the binomials overflow a float, so write their ratio as a product of c factors.",
             arith.pass_at_k, _pass_at_k_cases, forbidden=("pass_at_k", "pass_at_k_by_operands")),
    Exercise("hw5.group_advantages", "group_advantages", "function",
             "each group is group_size consecutive rewards: subtract that group's own mean, and with scale divide by "
             "its unbiased standard deviation plus 1e-4 (not the batch's, not the population std); a group whose "
             "rewards are all equal must give exactly 0.",
             lambda rewards, group_size, scale: advantages.group_advantages(rewards, group_size, eps=1e-4, scale=scale),
             _group_advantages_cases, forbidden=("group_advantages",)),
    Exercise("hw5.aggregate_loss", "aggregate_loss", "function",
             "padding must never reach the loss; token_mean divides the masked sum by the response tokens of the "
             "whole batch, sequence_mean first averages each row over its own response tokens, constant divides "
             "each row's masked sum by max_tokens (the generation budget, never the padded width); then average "
             "over rows.",
             lambda per_token, mask, mode, max_tokens: losses.aggregate_loss(per_token, mask, mode, max_tokens),
             _aggregate_cases,
             forbidden=("aggregate_loss", "masked_mean", "masked_sum")),
    Exercise("hw5.is_correct", "is_correct", "function",
             "evaluate the prompt left to right; split the response into words at whitespace and into segments at "
             "the word ';'; only a last segment of exactly two words, 'answer' and an integer written the canonical "
             "way, is a final answer; the steps before it are not checked.",
             references.is_correct, _is_correct_cases, allowed_imports=("re",),
             forbidden=("is_correct", "grade_response", "final_answer", "parse_response", "outcome_reward",
                        "from_text", "check_steps", "process_reward")),
    Exercise("hw5.quiz", "quiz_answers", "quiz", "re-read this homework's introduction (each formula and what its paper changed), try each question in the widget (Check), and copy option texts exactly."),
    Exercise("hw6.response_loss_mask", "response_loss_mask", "function",
             "rows are padded on the left, so a row's prompt starts after its padding, not at column 0; the prompt "
             "length counts <bos>; everything after the prompt is response, the final <eos> included.",
             references.response_loss_mask, _response_mask_cases,
             forbidden=("response_loss_mask", "encode_demonstrations", "encode_prompt_responses")),
    Exercise("hw6.sft_loss", "sft_loss", "function",
             "the logits at position t−1 score the token at t, so drop the last position of the logits and the first "
             "of the ids and of the mask; take the log-softmax in one stable step; then one mean over every marked "
             "token of the batch, not a mean per row.",
             losses.sft_loss, _sft_loss_cases,
             forbidden=("sft_loss", "demonstration_loss", "heldout_loss", "aggregate_loss", "masked_mean",
                        "token_logprobs")),
    Exercise("hw6.all_token_mask", "all_token_mask", "function",
             "keep every real token except the first one of each row (<bos>, which no logit predicts); with left "
             "padding that first token is in a different column in each row.",
             references.all_token_mask, _all_token_mask_cases,
             forbidden=("all_token_mask", "encode_demonstrations")),
    Exercise("hw6.quiz", "quiz_answers", "quiz", "re-read this homework's introduction (what is imitated, where the EOS goes, how the mean is taken), try each question in the widget (Check), and copy option texts exactly."),
]}


def exercise(exercise_id: str) -> Exercise:
    """The spec of ``exercise_id``, or one clear sentence when there is none."""
    if exercise_id not in EXERCISES:
        raise ValueError(f"unknown exercise {exercise_id!r}; expected one of: {', '.join(EXERCISES)}.")
    return EXERCISES[exercise_id]


def draw_cases(ex: Exercise, seed: int, public: bool) -> list[dict]:
    """The cases of ``ex`` drawn from ``seed`` (public cases: ``PUBLIC_SEED``)."""
    g = torch.Generator().manual_seed(seed if not public else PUBLIC_SEED)
    return ex.cases(g, public)


def build_model(arg: ModelArg):
    """Build a model argument (the same code runs in the student's kernel and in the grader)."""
    if arg.config is None:
        from rlcourse.model.loading import load_policy

        return load_policy()[0].eval()
    return build_llama(arg.config)


def compare(actual: list[torch.Tensor], expected: list[torch.Tensor], rtol: float, atol: float) -> str | None:
    """``None`` when ``actual`` matches ``expected``; else what is wrong, in words (no values shown)."""
    if len(actual) != len(expected):
        return f"returned {len(actual)} value(s), expected {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected)):
        which = f" (output {k + 1})" if len(expected) > 1 else ""
        if tuple(a.shape) != tuple(e.shape):
            return f"shape {tuple(a.shape)}{which}, expected {tuple(e.shape)}"
        if torch.isnan(a).any() and not torch.isnan(e).any():
            return f"NaN in the result{which}"
        if not torch.isfinite(a).all() and torch.isfinite(e).all():
            return f"inf in the result{which}"
        if not torch.allclose(a, e.to(torch.float64), rtol=rtol, atol=atol):
            worst = float((a - e).abs().max())
            return f"values off{which}: largest error {worst:.3g}"
    return None


def homework_of(exercise_id: str) -> str:
    return exercise_id.split(".")[0]


def exercises_of(homework: str) -> list[Exercise]:
    return [e for e in EXERCISES.values() if homework_of(e.id) == homework]


def _quiz_points(homework: str, answers: Any) -> tuple[int, int, str | None]:
    """``(correct, total, problem)`` of plain quiz answers (a dict "q1" -> answer)."""
    questions = QUIZZES[homework]
    q = quiz.Quiz(questions)
    if not isinstance(answers, dict):
        return 0, len(questions), f"quiz_answers() must return a dict like {{'q1': 0, ...}}, got {type(answers).__name__}"
    correct = 0
    for question in questions:
        answer = answers.get(question.id)
        try:
            correct += bool(answer is not None and q.grade({question.id: answer})[question.id])
        except ValueError:
            pass
    return correct, len(questions), None


__all__ = ["Exercise", "ModelArg", "EXERCISES", "QUIZZES", "exercise", "draw_cases", "quiz_for", "compare", "as_arrays",
           "preference_pairs", "build_model", "math"]
