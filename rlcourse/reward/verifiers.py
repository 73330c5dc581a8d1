"""Learned verifiers for the arithmetic world: an outcome reward model (ORM) and a process reward
model (PRM), and best-of-N reranking with them (notebook 07).

Both are logistic regressions on what the policy itself says about each token it wrote: its
log-probability ``log π(a_t)``, how far that is below the policy's favourite token
``log π(a_t) − max_a log π(a)`` (0 when the token was the argmax: a slip is usually a token the
policy did not like best), and the entropy at that position. They differ in what they are
trained on, which is the point (Uesato et al. 2022; Lightman et al. 2023, "Let's Verify Step by
Step"):

- the **ORM** gets one label per response (is the final answer right) and the features pooled
  over the whole response (their minimum and mean, and the response's length in steps);
- the **PRM** gets one label per step (``arith.check_steps``; a response without a final answer gets
  a 0 at its last token, as in :func:`arith_step_rewards`) and the features pooled over that
  step's tokens. A response's PRM score is the probability that every step is valid, the product
  of the step probabilities (Lightman et al. 2023).

(A copy of the policy fine-tuned as a classifier on the same labels was tried first: with the
2,000 responses and seconds this course can spend, it learned only "short responses are right",
which holds across problems and is false within one, so its best-of-N fell below chance as N grew.)

Best-of-N picks, among N samples of a problem, the one the verifier scores highest; majority vote
(self-consistency, Wang et al. 2023) picks the most frequent final answer; the oracle is right
when any of the N is (pass@N).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlcourse.model import policy
from rlcourse.world import arith
from rlcourse.utils import check

SCORE_BATCH = 512  # responses per scoring forward pass in `sample` (memory; the features do not depend on it)

__all__ = ["Samples", "Verifier", "arith_step_rewards", "sample", "train_verifier", "outcome_scores", "process_scores",
           "best_of_n_accuracy", "majority_vote_accuracy", "oracle_accuracy"]


def arith_step_rewards(gen: policy.Generation, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Process rewards of arithmetic responses on their tokens: ``(step_rewards, step_mask)``, both (N, T).

    Each ``;``-separated segment gets ``arith.process_reward`` (1 valid, 0 not) at its last token;
    a response without a final answer gets 0 at its last token (EOS, or the cut-off end) instead.
    Needs a word-level tokenizer (one token per word, as tiny-math's), so that word j is token j.
    """
    mask = gen.response_mask.bool()
    N, T = mask.shape
    step_rewards, step_mask = torch.zeros(N, T), torch.zeros(N, T)
    for i, (prompt, ids) in enumerate(zip(gen.prompts, gen.response_ids)):
        length = int(mask[i].sum())
        words = tokenizer.convert_ids_to_tokens(ids[:length].tolist())
        if words and words[-1] == tokenizer.eos_token:
            words = words[:-1]
        if any(" " in w or not w for w in words):
            raise ValueError("process rewards need a word-level tokenizer (one token per word of the response), such "
                             "as tiny-math's (loading.load_math_policy); this tokenizer splits words.")
        text = " ".join(words)
        grade = arith.grade_response(arith.Problem.from_text(prompt), text)  # process_reward = its step verdicts
        for step, valid in zip(arith.parse_response(text), grade.steps):
            step_rewards[i, step.span[1] - 1], step_mask[i, step.span[1] - 1] = float(valid), 1.0
        if length and grade.answer is None:
            step_rewards[i, length - 1], step_mask[i, length - 1] = 0.0, 1.0
    return step_rewards, step_mask


@dataclass
class Samples:
    """n responses to each of P problems (N = P·n, in problem order), graded, with per-token features.

    ``correct`` (N,) bool; ``step_labels`` and ``step_mask`` (N, T) the process labels at step ends
    (:func:`arith_step_rewards`); ``token_features`` (N, T, 3): log π(a_t), its gap
    to the best token's log-prob, and the entropy; ``steps`` the parsed segments of each response.
    """

    problems: list[arith.Problem]
    num_samples: int
    texts: list[str]
    correct: torch.Tensor
    mask: torch.Tensor
    step_labels: torch.Tensor
    step_mask: torch.Tensor
    token_features: torch.Tensor


@torch.no_grad()
def sample(model, tokenizer, problems: list[arith.Problem], num_samples: int, seed: int = 0,
           temperature: float = 1.0) -> Samples:
    """Sample ``num_samples`` responses per problem (seeded), grade each response and step, and read
    the policy's per-token log-prob, gap to its favourite token, and entropy."""
    check(len(problems) > 0 and all(isinstance(p, arith.Problem) for p in problems),
          "problems must be a non-empty list of arith.Problem (arith.sample_problems or arith.held_out_problems).")
    prompts = [p.text for p in problems for _ in range(num_samples)]
    model.eval()
    gen = policy.generate(model, tokenizer, prompts, arith.MAX_RESPONSE_TOKENS, temperature,
                          generator=torch.Generator().manual_seed(seed))
    T = gen.response_ids.shape[1]
    features = []
    for rows in torch.arange(len(prompts)).split(SCORE_BATCH):  # all 3,888 rows of notebook 07 at once peaked at 2.8 GB
        logits = policy.forward(model, gen.input_ids[rows], gen.attention_mask[rows], logits_to_keep=T + 1).logits[:, :-1].float()
        log_probs = torch.log_softmax(logits, -1)  # (rows, T, V)
        chosen = log_probs.gather(-1, gen.response_ids[rows, :, None]).squeeze(-1)  # (rows, T)
        gap = chosen - log_probs.max(-1).values  # (rows, T) ≤ 0
        entropy = -(log_probs.exp() * log_probs).sum(-1)  # (rows, T)
        features.append(torch.stack([chosen, gap, entropy], -1))
    labels, ends = arith_step_rewards(gen, tokenizer)
    correct = torch.tensor([arith.is_correct(arith.Problem.from_text(p), t) for p, t in zip(gen.prompts, gen.texts)])
    return Samples(list(problems), num_samples, gen.texts, correct, gen.response_mask.bool(), labels, ends,
                   torch.cat(features))


def _pool(features: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Min and mean of each feature over the tokens in ``where`` (rows, T) → (rows, 2·F)."""
    big = torch.where(where[..., None], features, torch.tensor(float("inf")))
    count = where.sum(1, keepdim=True).clamp(min=1)
    mean = torch.where(where[..., None], features, 0.0).sum(1) / count
    low = big.min(1).values
    return torch.cat([torch.where(torch.isinf(low), 0.0, low), mean], -1)  # an empty row pools to 0


def outcome_features(samples: Samples) -> torch.Tensor:
    """One row per response: the token features pooled over the response, and its number of steps."""
    num_steps = samples.step_mask.sum(1, keepdim=True)
    return torch.cat([_pool(samples.token_features, samples.mask), num_steps], -1)  # (N, 7)


def process_features(samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per step: the token features pooled over the step's tokens; and the (N, T) map of step ends."""
    ends = samples.step_mask.bool() & samples.mask
    # step id of each token: the number of step ends strictly before it
    step_id = torch.cumsum(ends.long(), 1) - ends.long()  # (N, T)
    rows, cols = ends.nonzero(as_tuple=True)
    same = (step_id[rows] == step_id[rows, cols][:, None]) & samples.mask[rows]  # (S, T) tokens of step s
    return _pool(samples.token_features[rows], same), ends  # (S, 6)


class Verifier(torch.nn.Module):
    """Logistic regression on standardised features: P(right) = σ(w·(x − μ)/σ + b)."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.register_buffer("mu", x.mean(0))
        self.register_buffer("sd", x.std(0).clamp(min=1e-6))
        self.linear = torch.nn.Linear(x.shape[1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mu) / self.sd).squeeze(-1)  # logits


def train_verifier(samples: Samples, kind: str, steps: int = 200, lr: float = 0.1) -> Verifier:
    """Fit the ORM (``kind="outcome"``: one label per response) or the PRM (``"process"``: one label
    per step) by full-batch gradient descent on the logistic loss (deterministic: zero-initialised)."""
    check(kind in ("outcome", "process"), f"kind must be 'outcome' or 'process', got {kind!r}.")
    if kind == "outcome":
        x, y = outcome_features(samples), samples.correct.float()
    else:
        x, ends = process_features(samples)
        y = samples.step_labels[ends]
    verifier = Verifier(x)
    torch.nn.init.zeros_(verifier.linear.weight)
    torch.nn.init.zeros_(verifier.linear.bias)
    optimizer = torch.optim.Adam(verifier.linear.parameters(), lr=lr)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(verifier(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    verifier.train_loss = loss.item()
    return verifier.eval()


@torch.no_grad()
def outcome_scores(orm: Verifier, samples: Samples) -> torch.Tensor:
    """P(final answer right) of every response, (N,)."""
    return torch.sigmoid(orm(outcome_features(samples)))


@torch.no_grad()
def process_scores(prm: Verifier, samples: Samples) -> torch.Tensor:
    """P(every step valid) = Π over its steps of P(step valid), (N,) (Lightman et al. 2023)."""
    x, ends = process_features(samples)
    log_p = torch.zeros(ends.shape)
    log_p[ends] = torch.nn.functional.logsigmoid(prm(x))
    return torch.exp(log_p.sum(1))


def _chunks(samples: Samples, N: int):
    n = samples.num_samples
    check(type(N) is int and 1 <= N <= n and n % N == 0,
          f"N must divide the {n} samples per problem (each problem's samples are cut into n/N disjoint sets of N), got {N}.")
    return n // N


def best_of_n_accuracy(scores: torch.Tensor, samples: Samples, N: int) -> float:
    """Share of right answers when each problem keeps the best-scored of N samples, averaged over the
    n/N disjoint sets of N of its n samples and over problems (ties go to the first sample)."""
    k = _chunks(samples, N)
    picked = scores.reshape(-1, k, N).argmax(-1)  # (P, k) index of the best within each set
    right = samples.correct.reshape(-1, k, N).gather(-1, picked[..., None])  # (P, k, 1)
    return right.float().mean().item()


def majority_vote_accuracy(samples: Samples, N: int) -> float:
    """Share right when each set of N samples answers with its most frequent final answer (arith.majority_vote)."""
    k = _chunks(samples, N)
    n = samples.num_samples
    right = []
    for i, problem in enumerate(samples.problems):
        texts = samples.texts[i * n : (i + 1) * n]
        right += [arith.majority_vote(texts[j * N : (j + 1) * N]) == problem.value for j in range(k)]
    return sum(right) / len(right)


def oracle_accuracy(samples: Samples, N: int) -> float:
    """Share of sets of N samples holding at least one right answer (pass@N over disjoint sets)."""
    k = _chunks(samples, N)
    return samples.correct.reshape(-1, k, N).any(-1).float().mean().item()
