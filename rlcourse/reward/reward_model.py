"""The learned reward model r_φ: simulated annotators, preference data, Bradley–Terry training.

Three steps of RLHF, in the order it uses them:

1. **Simulated annotators** :func:`label_preferences` compare two responses the way noisy
   humans do, with the Bradley–Terry model ``P(a ≻ b) = σ(β (r_a − r_b))`` on their gold
   rewards (:func:`rlcourse.world.rewards.gold_reward`); :func:`make_preference_dataset` samples
   responses per prompt from the policy and labels them, giving a :class:`PreferenceDataset`.

2. **The reward model** r_φ: the tiny backbone with a scalar head (Hugging Face's
   ``AutoModelForSequenceClassification`` with ``num_labels=1``, which reads the score at
   the last non-pad token), trained on the labels with :func:`bradley_terry_loss` by
   :func:`train_reward_model`, and measured with :func:`preference_accuracy` and
   :func:`ranking_agreement`.

3. **The shipped reward model** of notebook 02 (``rlcourse/assets/tiny-rm``): its recipe
   :data:`RM_RECIPE`, :func:`reproduce_trained_reward_model` that made it,
   :func:`load_trained_reward_model`, and :func:`shipped_figures`, the figures it was saved with.

Glossary: B texts or pairs, N pairs, L padded sequence length.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from rlcourse.model import loading, policy
from rlcourse.world import grammar
from rlcourse.world.rewards import gold_reward
from rlcourse.utils import check as _check
from rlcourse.utils import check_texts, progress_bar
from rlcourse.model.runtime import quiet_loading

__all__ = [
    "ANNOTATOR_BETA",
    "label_preferences",
    "PreferenceDataset",
    "make_preference_dataset",
    "load_reward_model",
    "reward_scores",
    "bradley_terry_loss",
    "pair_rewards",
    "train_reward_model",
    "preference_accuracy",
    "spearman_correlation",
    "ranking_agreement",
    "TRAINED_RM_PATH",
    "RM_RECIPE",
    "course_preference_split",
    "reproduce_trained_reward_model",
    "load_trained_reward_model",
    "shipped_figures",
]

ANNOTATOR_BETA = 4.0  # β of the simulated annotators: P(a ≻ b) = σ(β (r_a − r_b))


# ---------------------------------------------------------------------------
# Simulated annotators and the preference data set
# ---------------------------------------------------------------------------


def label_preferences(
    rewards_a: torch.Tensor, rewards_b: torch.Tensor, beta: float, generator: torch.Generator
) -> torch.Tensor:
    """Noisy annotators: prefer ``a`` with the Bradley–Terry probability ``σ(β (r_a − r_b))``.

    ``β`` sets how reliable they are: ``β = 0`` flips coins, ``β → ∞`` always follows the
    gold reward. Two responses of equal reward are a coin flip.

    Args:
        rewards_a, rewards_b: ``(B,)`` gold rewards of the two responses of each pair.
        beta: ``β ≥ 0``.
        generator: the ``torch.Generator`` that draws the labels.

    Returns:
        ``(B,)`` bool, True where ``a`` is preferred.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> label_preferences(torch.tensor([9.0, -9.0]), torch.tensor([-9.0, 9.0]), beta=4.0, generator=g)
        tensor([ True, False])
    """
    _check(
        isinstance(rewards_a, torch.Tensor) and isinstance(rewards_b, torch.Tensor) and rewards_a.dim() == 1,
        "rewards_a and rewards_b must be 1-D tensors of shape (B,), one gold reward per response.",
    )
    _check(
        rewards_a.shape == rewards_b.shape,
        f"rewards_a and rewards_b must have the same length, got {len(rewards_a)} and {len(rewards_b)}.",
    )
    _check(isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0, f"beta must be a finite number >= 0, got {beta!r}.")
    p_a = torch.sigmoid(beta * (rewards_a.double() - rewards_b.double()))  # (B,) P(a ≻ b)
    u = torch.rand(rewards_a.shape, generator=generator, dtype=torch.float64)  # (B,)
    return u < p_a


@dataclass
class PreferenceDataset:
    """Labelled pairs: for each pair, the full text the annotator chose and the one rejected.

    Pairs come in *prompt groups*: all pairs compared among the responses to one prompt
    share a group id, and a group's pairs are contiguous. Training scores each response of
    a group once for all its pairs, and :meth:`split` never cuts a group in two, so no
    held-out response was seen in training.

    Attributes:
        prompts: N prompts.
        chosen, rejected: N full texts (prompt + response) each.
        chosen_scores, rejected_scores: ``(N,)`` their gold rewards (hidden from the reward
            model; used to measure it). Noise means some ``chosen_scores`` are lower.
        groups: N prompt-group ids (non-decreasing); ``None`` makes every pair its own group.
        truncated: the full texts whose response was cut off at ``max_new_tokens`` before its EOS
            (DPO appends an EOS only to responses that ended; see :func:`rlcourse.rl.dpo.encode_pairs`).
    """

    prompts: list[str]
    chosen: list[str]
    rejected: list[str]
    chosen_scores: torch.Tensor
    rejected_scores: torch.Tensor
    groups: list[int] | None = None
    truncated: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = list(range(len(self.chosen)))
        lengths = [len(self.prompts), len(self.chosen), len(self.rejected), len(self.chosen_scores),
                   len(self.rejected_scores), len(self.groups)]
        _check(
            len(set(lengths)) == 1,
            "a PreferenceDataset needs as many prompts, chosen texts, rejected texts, chosen_scores, "
            f"rejected_scores and groups, got lengths {', '.join(map(str, lengths))}.",
        )
        _check(all(a <= b for a, b in zip(self.groups, self.groups[1:])),
               "groups must be non-decreasing: keep the pairs of one prompt group together.")

    @classmethod
    def from_labels(cls, prompts: list[str], texts_a: list[str], texts_b: list[str], scores_a: torch.Tensor,
                    scores_b: torch.Tensor, a_wins: torch.Tensor, groups: list[int] | None = None,
                    truncated: frozenset[str] = frozenset()) -> PreferenceDataset:
        """Pairs ``(a, b)`` with their gold scores ``(N,)`` and labels ``a_wins`` ``(N,)`` bool, as chosen/rejected.

        Example:
            >>> d = PreferenceDataset.from_labels(["", ""], ["x", "y"], ["z", "w"], torch.tensor([1.0, 2.0]),
            ...                                   torch.tensor([3.0, 4.0]), torch.tensor([True, False]))
            >>> d.chosen, d.rejected, d.chosen_scores
            (['x', 'w'], ['z', 'y'], tensor([1., 4.]))
        """
        wins = a_wins.tolist()
        return cls(
            prompts=list(prompts),
            chosen=[a if w else b for a, b, w in zip(texts_a, texts_b, wins)],
            rejected=[b if w else a for a, b, w in zip(texts_a, texts_b, wins)],
            chosen_scores=torch.where(a_wins, scores_a, scores_b),
            rejected_scores=torch.where(a_wins, scores_b, scores_a),
            groups=None if groups is None else list(groups),
            truncated=frozenset(truncated),
        )

    def __len__(self) -> int:
        return len(self.chosen)

    @property
    def num_groups(self) -> int:
        """How many prompt groups (prompts) the pairs come from."""
        return len(set(self.groups))

    def __getitem__(self, index: slice) -> PreferenceDataset:
        """A slice of the pairs, e.g. ``dataset[:200]``, as a new PreferenceDataset."""
        _check(isinstance(index, slice), f"index a PreferenceDataset with a slice (dataset[:n]), got {index!r}.")
        return PreferenceDataset(self.prompts[index], self.chosen[index], self.rejected[index],
                                 self.chosen_scores[index], self.rejected_scores[index], self.groups[index], self.truncated)

    def first_groups(self, n: int) -> PreferenceDataset:
        """The pairs of the first ``n`` prompt groups."""
        _check(1 <= n <= self.num_groups, f"first_groups({n}) needs 1 <= n <= {self.num_groups} (the number of groups).")
        last = sorted(set(self.groups))[n - 1]
        return self[: sum(g <= last for g in self.groups)]

    def split(self, frac: float) -> tuple[PreferenceDataset, PreferenceDataset]:
        """``(first, rest)``: the pairs of the first ``round(frac · G)`` prompt groups, and the others."""
        n = round(frac * self.num_groups)
        _check(0 < n < self.num_groups,
               f"split({frac}) of {self.num_groups} prompt groups leaves one side empty; pass 0 < frac < 1 and more prompts.")
        first = self.first_groups(n)
        return first, self[len(first):]


def _sample_groups(model, tokenizer, prompts, num_responses, max_new_tokens, batch_size, generator):
    """``num_responses`` full texts for every prompt, generated ``batch_size`` responses at a time.

    Returns:
        ``(groups, truncated)``: one list of texts per prompt, and the set of texts whose response
        was cut off at ``max_new_tokens`` before its EOS.
    """
    per_call = max(1, batch_size // num_responses)  # prompts per generate call
    groups, truncated = [], set()
    for i in range(0, len(prompts), per_call):
        chunk = prompts[i : i + per_call]
        gen = policy.generate(model, tokenizer, [p for p in chunk for _ in range(num_responses)],
                              max_new_tokens=max_new_tokens, generator=generator)
        texts = gen.full_texts()
        truncated.update(text for text, ended in zip(texts, gen.finished.tolist()) if not ended)
        groups += [texts[k * num_responses : (k + 1) * num_responses] for k in range(len(chunk))]
    return groups, truncated


def make_preference_dataset(
    model,
    tokenizer,
    prompts: list[str],
    n_pairs: int | None = None,
    seed: int = 0,
    beta: float = ANNOTATOR_BETA,
    responses_per_prompt: int = 2,
    max_new_tokens: int = 24,
    batch_size: int = 512,
) -> PreferenceDataset:
    """Sample K responses per prompt from the policy and let the simulated annotators compare them.

    For each prompt, K = ``responses_per_prompt`` responses are sampled and *every* pair of
    distinct responses is labelled by :func:`label_preferences` on their gold rewards: one
    pair per prompt for K = 2, ``K(K−1)/2`` for larger K. That is InstructGPT's trick
    (Ouyang et al. 2022, §3.5): a reward model scores each response once for all its
    comparisons, so labels are far cheaper to learn from. Pairs of identical responses teach
    nothing and are skipped.

    Args:
        model, tokenizer: the policy that writes the responses (sampled at temperature 1).
        prompts: the prompts, one group each, in order.
        n_pairs: stop at exactly this many pairs, cycling through ``prompts`` as needed
            (the last group may be cut short); ``None`` uses every prompt once.
        seed: seeds the one ``torch.Generator`` used for sampling and labels.
        beta: the annotators' ``β``.
        responses_per_prompt: K ≥ 2.
        max_new_tokens: the longest response (default 24; the RL loops default to 32, ``LoopConfig.max_new_tokens``).
        batch_size: responses generated per ``generate`` call.

    Returns:
        a :class:`PreferenceDataset`, one group id per prompt.
    """
    check_texts(prompts, "prompts")
    _check(len(prompts) > 0, "prompts is empty; pass at least one prompt, e.g. grammar.review_prompts(100, seed=0).")
    _check(n_pairs is None or (isinstance(n_pairs, int) and n_pairs >= 1), f"n_pairs must be None or an int >= 1, got {n_pairs!r}.")
    _check(isinstance(responses_per_prompt, int) and responses_per_prompt >= 2,
           f"responses_per_prompt must be an int >= 2 (a pair needs two responses), got {responses_per_prompt!r}.")
    generator = torch.Generator().manual_seed(seed)
    K = responses_per_prompt
    kept_prompts, texts_a, texts_b, group_ids, truncated = [], [], [], [], set()
    cursor = 0
    while (n_pairs is None and cursor < len(prompts)) or (n_pairs is not None and len(texts_a) < n_pairs):
        _check(cursor < 50 * len(prompts) + 1000, f"only {len(texts_a)} of {n_pairs} pairs differ after {cursor} prompts; "
                                                  "the policy is (nearly) deterministic, so sample from a less peaked one.")
        wanted = len(prompts) if n_pairs is None else math.ceil((n_pairs - len(texts_a)) / (K * (K - 1) // 2))
        chunk = [prompts[(cursor + j) % len(prompts)] for j in range(wanted)]
        groups, cut = _sample_groups(model, tokenizer, chunk, K, max_new_tokens, batch_size, generator)
        truncated |= cut
        for j, (prompt, texts) in enumerate(zip(chunk, groups)):
            for a, b in itertools.combinations(texts, 2):
                if a != b:
                    kept_prompts.append(prompt)
                    texts_a.append(a)
                    texts_b.append(b)
                    group_ids.append(cursor + j)
        cursor += len(chunk)
    if n_pairs is not None:
        kept_prompts, texts_a, texts_b, group_ids = (x[:n_pairs] for x in (kept_prompts, texts_a, texts_b, group_ids))
    distinct = sorted(set(texts_a) | set(texts_b))  # each response appears in up to K − 1 pairs: score it once
    gold = dict(zip(distinct, gold_reward(distinct).tolist()))
    scores_a = torch.tensor([gold[t] for t in texts_a])  # (N,)
    scores_b = torch.tensor([gold[t] for t in texts_b])  # (N,)
    a_wins = label_preferences(scores_a, scores_b, beta, generator)  # (N,) bool
    kept = set(texts_a) | set(texts_b)
    return PreferenceDataset.from_labels(kept_prompts, texts_a, texts_b, scores_a, scores_b, a_wins, groups=group_ids,
                                         truncated=frozenset(truncated & kept))


# ---------------------------------------------------------------------------
# The reward model and its Bradley–Terry training
# ---------------------------------------------------------------------------


def load_reward_model(name_or_path: str | Path | None = None, seed: int = 0):
    """A reward model r_φ: a causal-LM backbone with a scalar head, and its tokenizer.

    ``AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)`` keeps the
    backbone's weights and adds a linear head ``score: hidden → 1`` (freshly initialised,
    from ``seed``, when ``path`` is a plain language model; loaded when it is a saved
    reward model). For Llama (and GPT-2) the score is read at the **last non-pad token**
    of each row, which is right for left-padded batches too.

    Args:
        name_or_path: ``None`` for the shipped tiny model, or a folder written by
            ``rm.save_pretrained(folder)`` (with the tokenizer saved next to it).
        seed: seeds the head's initialisation (the caller's global RNG is left untouched).

    Returns:
        ``(rm, tokenizer)``: the model in eval mode, the tokenizer padding on the left.
    """
    source = str(name_or_path or loading.DEFAULT_MODEL_PATH)
    tokenizer = loading.load_tokenizer(source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with quiet_loading(source):
            rm = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    if rm.config.pad_token_id is None:
        rm.config.pad_token_id = tokenizer.pad_token_id
    return rm.eval(), tokenizer


def _scores(rm, tokenizer, texts: list[str]) -> torch.Tensor:
    """One forward pass: B texts -> ``(B,)`` rewards, with gradient."""
    device = next(rm.parameters()).device
    enc = tokenizer(texts, return_tensors="pt", padding=True).to(device)  # input_ids, attention_mask: (B, L)
    return rm(**enc).logits.squeeze(-1).float()  # (B, 1) -> (B,)


@torch.no_grad()
def reward_scores(rm, tokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """The reward model's scores r_φ(x) of full texts, in batches.

    Args:
        texts: B strings (prompt + response).

    Returns:
        ``(B,)`` float32 rewards (on the CPU).
    """
    check_texts(texts)
    _check(len(texts) > 0, "texts is empty; pass at least one text to score.")
    was_training = rm.training
    rm.eval()
    scores = [_scores(rm, tokenizer, list(texts[i : i + batch_size])).cpu() for i in range(0, len(texts), batch_size)]
    rm.train(was_training)
    return torch.cat(scores)  # (B,)


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the labels under the Bradley–Terry model (Bradley & Terry 1952;
    the reward-model loss of Ouyang et al. 2022, "Training language models to follow
    instructions with human feedback").

    Model: ``P(y_c ≻ y_r) = exp(r_c) / (exp(r_c) + exp(r_r)) = σ(r_c − r_r)``. Maximising the
    likelihood of the observed labels is minimising

        L = −mean_b log σ(r_c − r_r) = mean_b log(1 + exp(−(r_c − r_r))),

    computed with ``F.logsigmoid``, which is stable for any margin (a naive
    ``log(sigmoid(x))`` gives ``−inf`` at ``x = −1000``). Only differences matter: adding a
    constant to every reward changes nothing. Gradient: ``∂L/∂r_c = −σ(r_r − r_c)/B``, large
    when the model ranks the pair wrongly, vanishing when it is confidently right.

    Args:
        chosen_rewards: ``(B,)`` r_φ(x, y_c).
        rejected_rewards: ``(B,)`` r_φ(x, y_r).

    Returns:
        The 0-dim loss (≥ 0; ``log 2 ≈ 0.693`` when the model cannot tell the two apart).

    Example:
        >>> bradley_terry_loss(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0]))  # (log 2 + log(1 + e⁻¹)) / 2
        tensor(0.5032)
    """
    for name, x in (("chosen_rewards", chosen_rewards), ("rejected_rewards", rejected_rewards)):
        _check(isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 1,
               f"{name} must be a 1-D float tensor of shape (B,), got {getattr(x, 'shape', type(x).__name__)}.")
    _check(
        chosen_rewards.shape == rejected_rewards.shape,
        f"chosen_rewards and rejected_rewards must pair up, got lengths {len(chosen_rewards)} and {len(rejected_rewards)}.",
    )
    _check(len(chosen_rewards) > 0, "bradley_terry_loss needs at least one pair, got empty tensors.")
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def preference_accuracy(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> float:
    """Fraction of pairs a scorer ranks like the label: ``mean 1[r_c > r_r]`` (a tie counts ½).

    Works for any scorer: pass reward-model scores, or the gold scores to get the *noise
    ceiling* (how often the gold reward itself agrees with the noisy labels).

    Example:
        >>> preference_accuracy(torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 1.0, 1.0]))  # (1 + 0 + ½) / 3
        0.5
    """
    _check(
        chosen_rewards.shape == rejected_rewards.shape and chosen_rewards.dim() == 1 and len(chosen_rewards) > 0,
        f"chosen_rewards and rejected_rewards must be non-empty (B,) tensors of one length, got shapes "
        f"{tuple(chosen_rewards.shape)} and {tuple(rejected_rewards.shape)}.",
    )
    wins = (chosen_rewards > rejected_rewards).double() + 0.5 * (chosen_rewards == rejected_rewards).double()  # (B,)
    return float(wins.mean())


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of ``x``, ties sharing their average rank."""
    values, counts = torch.unique(x, sorted=True, return_counts=True)  # distinct values ascending
    first = torch.cumsum(counts, 0) - counts + 1  # rank of each value's first copy
    average = first + (counts - 1) / 2  # (n_distinct,)
    return average[torch.searchsorted(values, x)].double()


def spearman_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's ρ: the Pearson correlation of the ranks of ``x`` and ``y`` (ties: average ranks).

    ρ = 1 when one is an increasing function of the other, whatever the scale; so a reward
    model that orders responses like the gold reward scores ρ ≈ 1 even if its numbers differ.

    Example:
        >>> round(spearman_correlation(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 4.0, 9.0, 100.0])), 6)
        1.0
    """
    _check(
        x.shape == y.shape and x.dim() == 1 and len(x) >= 2,
        f"x and y must be (N,) tensors of one length N >= 2, got shapes {tuple(x.shape)} and {tuple(y.shape)}.",
    )
    rx, ry = _ranks(x.detach().cpu()), _ranks(y.detach().cpu())  # (N,), (N,)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    _check(denominator > 0, "spearman_correlation is undefined when x or y is constant; pass varying values.")
    return float((rx * ry).sum()) / denominator


def calibration(proxy: torch.Tensor, gold: torch.Tensor) -> tuple[float, float]:
    """The least-squares line r_φ ≈ a·r_gold + c of a reward model's scores on the gold reward's.

    A Bradley–Terry reward model is fixed only up to a shift, and its scale is set by the
    annotators' noise (it learns about β·r_gold when labels follow σ(β·Δr_gold)), so its numbers
    are not gold units. The slope ``a`` converts: a proxy gain Δr_φ predicts a gold gain Δr_φ / a.
    Notebooks 02, 05 and 06 fit it (on held-out responses, on the reference policy's samples,
    on the plain samples of best-of-N).

    Returns:
        ``(a, c)`` = (cov(r_gold, r_φ) / var(r_gold), mean r_φ − a·mean r_gold), in float64.

    Example:
        >>> calibration(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0.0, 1.0, 2.0]))
        (2.0, 1.0)
    """
    _check(
        proxy.shape == gold.shape and proxy.dim() == 1 and len(proxy) >= 2,
        f"proxy and gold must be (N,) tensors of one length N >= 2, got shapes {tuple(proxy.shape)} and {tuple(gold.shape)}.",
    )
    x, y = gold.detach().double().cpu(), proxy.detach().double().cpu()  # (N,), (N,)
    dx = x - x.mean()
    _check(float((dx**2).sum()) > 0, "calibration is undefined when the gold rewards are all equal; pass varied responses.")
    slope = float((dx * (y - y.mean())).sum() / (dx**2).sum())
    return slope, float(y.mean() - slope * x.mean())


AGREEMENT_BLOCK_ROWS = 256  # rows of the (N, N) pair comparison made at a time: ~20 MB at N = 10,000


def ranking_agreement(scores_a: torch.Tensor, scores_b: torch.Tensor) -> dict[str, float]:
    """How alike two scorers rank the same N texts (two reward models, or one and the gold reward).

    * ``spearman_rho``: Spearman's ρ of the two score vectors (:func:`spearman_correlation`).
    * ``pair_agreement``: the fraction of the N(N−1)/2 pairs of texts that both order the same way,

          ``mean_{i<j} [ 1 − |sign(a_i − a_j) − sign(b_i − b_j)| / 2 ]``,

      so a pair counts 1 when both scorers order it alike (or both tie it), 0 when they
      disagree, ½ when only one ties. Without ties it is (1 + τ)/2 with Kendall's τ; 0.5 is
      chance. Unlike held-out accuracy it needs no labels: it says whether swapping one
      reward model for the other would change which response RL prefers.

    Args:
        scores_a, scores_b: ``(N,)`` scores of the same N ≥ 2 texts (e.g. :func:`reward_scores`
            of one list of texts under two models); their scales need not match.

    Returns:
        ``{"spearman_rho": ρ ∈ [−1, 1], "pair_agreement": ∈ [0, 1]}``.

    Example:
        >>> agreement = ranking_agreement(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 30.0, 20.0]))
        >>> {k: round(v, 4) for k, v in agreement.items()}  # pairs (1, 2), (1, 3) alike, (2, 3) swapped: 2/3
        {'spearman_rho': 0.5, 'pair_agreement': 0.6667}
    """
    _check(
        isinstance(scores_a, torch.Tensor) and isinstance(scores_b, torch.Tensor) and scores_a.shape == scores_b.shape
        and scores_a.dim() == 1 and len(scores_a) >= 2,
        f"scores_a and scores_b must be (N,) tensors of one length N >= 2 (one score per text), got shapes "
        f"{tuple(getattr(scores_a, 'shape', ()))} and {tuple(getattr(scores_b, 'shape', ()))}.",
    )
    a, b = scores_a.detach().cpu().double(), scores_b.detach().cpu().double()  # (N,), (N,)
    n = len(a)
    disagreement = 0.0
    for start in range(0, n, AGREEMENT_BLOCK_ROWS):
        rows = torch.arange(start, min(start + AGREEMENT_BLOCK_ROWS, n))  # (R,)
        sign_a = torch.sign(a[rows, None] - a[None, :])  # (R, N) sign(a_i − a_j)
        sign_b = torch.sign(b[rows, None] - b[None, :])  # (R, N)
        upper = torch.arange(n)[None, :] > rows[:, None]  # (R, N) pairs i < j only
        disagreement += float(((sign_a - sign_b).abs() / 2)[upper].sum())
    return {"spearman_rho": spearman_correlation(a, b), "pair_agreement": 1 - disagreement / (n * (n - 1) / 2)}


def _group_batches(dataset: PreferenceDataset) -> list[tuple[list[str], list[int], list[int]]]:
    """Per prompt group: its distinct texts, and each pair's chosen / rejected index into them."""
    batches: dict[int, tuple[list[str], list[int], list[int]]] = {}
    index: dict[tuple[int, str], int] = {}
    for group, chosen, rejected in zip(dataset.groups, dataset.chosen, dataset.rejected):
        texts, chosen_idx, rejected_idx = batches.setdefault(group, ([], [], []))
        for text, idx in ((chosen, chosen_idx), (rejected, rejected_idx)):
            if (group, text) not in index:
                index[group, text] = len(texts)
                texts.append(text)
            idx.append(index[group, text])
    return list(batches.values())


@torch.no_grad()
def pair_rewards(rm, tokenizer, dataset: PreferenceDataset, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``(chosen_rewards, rejected_rewards)``: r_φ of every pair's two texts, each distinct text scored once.

    Returns:
        two ``(N,)`` tensors, ready for :func:`preference_accuracy` or :func:`bradley_terry_loss`.
    """
    _check(len(dataset) > 0, "the preference dataset is empty; there are no pairs to score.")
    texts = sorted(set(dataset.chosen) | set(dataset.rejected))
    scores = dict(zip(texts, reward_scores(rm, tokenizer, texts, batch_size).tolist()))
    return (torch.tensor([scores[t] for t in dataset.chosen]),  # (N,)
            torch.tensor([scores[t] for t in dataset.rejected]))  # (N,)


def train_reward_model(
    rm,
    tokenizer,
    dataset: PreferenceDataset,
    num_epochs: int = 3,
    lr: float = 5e-4,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Fit r_φ to the preference labels by minimising :func:`bradley_terry_loss` with AdamW.

    Each step takes whole prompt groups (in a shuffled order) until it holds at least
    ``batch_size`` responses, scores every distinct response once in one left-padded
    ``(b, L)`` forward pass, and averages the loss over all the labelled pairs among them
    (InstructGPT's batching: with K responses per prompt, K forward passes serve
    ``K(K−1)/2`` comparisons, and the pairs of one prompt never straddle two steps).
    Then one AdamW step on every weight (backbone and head), gradient norm clipped at 1.

    Args:
        rm, tokenizer: from :func:`load_reward_model`; trained in place, left in eval mode.
        dataset: the training pairs.
        num_epochs, lr: passes over the data and AdamW learning rate.
        batch_size: responses per step (at least; whole groups are kept together).
        seed: seeds the shuffling.
        progress: show a ``tqdm`` bar with the running loss.

    Returns:
        history: one dict per step, ``{"step", "epoch", "loss", "accuracy", "margin", "pairs"}``
        (the step's Bradley–Terry loss, fraction of its pairs ranked like the label, mean
        r_c − r_r, and how many pairs it held).

    Raises:
        ValueError: on an empty data set, or when the loss becomes NaN (the step is named).
    """
    _check(isinstance(dataset, PreferenceDataset), f"dataset must be a PreferenceDataset, got {type(dataset).__name__}.")
    _check(len(dataset) > 0, "the preference dataset is empty; make pairs with make_preference_dataset first.")
    _check(num_epochs >= 1 and batch_size >= 1, f"num_epochs and batch_size must be >= 1, got {num_epochs} and {batch_size}.")
    groups = _group_batches(dataset)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(rm.parameters(), lr=lr, fused=True)  # fused: one kernel per step, ~10% faster here
    history: list[dict[str, float]] = []
    rm.train()
    bar = progress_bar(total=num_epochs * len(dataset), desc="reward model (pairs)", disable=not progress,
               mininterval=1.0)  # a widget update per second: a flood of them can stall a notebook's output
    for epoch in range(num_epochs):
        order = torch.randperm(len(groups), generator=generator).tolist()
        while order:
            texts, chosen_idx, rejected_idx = [], [], []
            while order and len(texts) < batch_size:  # whole groups until the batch is full
                group_texts, group_chosen, group_rejected = groups[order.pop(0)]
                chosen_idx += [len(texts) + i for i in group_chosen]
                rejected_idx += [len(texts) + i for i in group_rejected]
                texts += group_texts
            rewards = _scores(rm, tokenizer, texts)  # (b,) one score per distinct response
            chosen_rewards, rejected_rewards = rewards[chosen_idx], rewards[rejected_idx]  # (n,), (n,) n pairs
            loss = bradley_terry_loss(chosen_rewards, rejected_rewards)
            if not torch.isfinite(loss):
                rm.eval()
                bar.close()
                raise ValueError(f"the reward-model loss became {loss.item()} at step {len(history)} "
                                 f"(epoch {epoch}); lower lr (now {lr}) or check the data for broken texts.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(rm.parameters(), max_norm=1.0)
            optimizer.step()
            margins = (chosen_rewards - rejected_rewards).detach()  # (n,)
            history.append({"step": len(history), "epoch": epoch, "loss": loss.item(),
                            "accuracy": (margins > 0).float().mean().item(), "margin": margins.mean().item(),
                            "pairs": len(chosen_idx)})
            bar.update(len(chosen_idx))
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)  # shown at the next (rate-limited) refresh
    bar.close()
    rm.eval()
    return history


# ---------------------------------------------------------------------------
# The course's trained reward model (shipped, reproducible)
# ---------------------------------------------------------------------------

TRAINED_RM_PATH = Path(__file__).parent.parent / "assets" / "tiny-rm"

# The recipe of notebooks/02_reward_modeling.ipynb; the shipped reward model is its result.
RM_RECIPE = {
    "n_prompts": 700,  # review prompts shown to the annotators (grammar.review_prompts(n, seed=1))
    "prompt_seed": 1,
    "data_seed": 0,  # sampling the responses and drawing the labels
    "responses_per_prompt": 16,  # every pair of a prompt's K responses is labelled
    "beta": ANNOTATOR_BETA,
    "train_frac": 0.8,  # of the prompts; the rest are held out
    "num_epochs": 3,
    "lr": 5e-4,
    "batch_size": 16,
    "seed": 0,  # head initialisation and batch order
}


def course_preference_split(model=None, tokenizer=None) -> tuple[PreferenceDataset, PreferenceDataset]:
    """The preference data of notebook 02: ``(train, held_out)`` labelled from the tiny policy.

    Deterministic (about 10 s on 2 cores): the same pairs and labels every call.
    """
    if model is None:
        model, tokenizer = loading.load_policy()
    r = RM_RECIPE
    dataset = make_preference_dataset(
        model, tokenizer, grammar.review_prompts(r["n_prompts"], seed=r["prompt_seed"]), seed=r["data_seed"],
        beta=r["beta"], responses_per_prompt=r["responses_per_prompt"],
    )
    return dataset.split(r["train_frac"])


def reproduce_trained_reward_model(
    out_dir: str | Path | None = TRAINED_RM_PATH,
    progress: bool = True,
    split: tuple[PreferenceDataset, PreferenceDataset] | None = None,
):
    """Train the course's reward model with :data:`RM_RECIPE` (≈ 45 s on 2 cores) and save it.

    This is how ``rlcourse/assets/tiny-rm`` was made (``rlcourse train-reward-model``). Same
    machine, same thread count: the same weights, bit for bit; another CPU rounds differently
    and training amplifies it, so there the figures and the ranking of responses agree, not
    the weights (notebook 02 retrains with this recipe and checks both within measured bands).

    Args:
        out_dir: where to save the model and ``recipe.json`` (``None``: keep it in memory only).
        progress: show the training bar.
        split: the ``(train, held_out)`` data when the caller already has it; ``None`` makes
            it with :func:`course_preference_split` (≈ 10 s).

    Returns:
        ``(rm, tokenizer, figures)`` with ``figures`` = held-out accuracy, noise ceiling and
        Spearman ρ with the gold reward on the held-out responses.
    """
    r = RM_RECIPE
    train, held_out = course_preference_split() if split is None else split
    rm, tokenizer = load_reward_model(seed=r["seed"])
    train_reward_model(rm, tokenizer, train, num_epochs=r["num_epochs"], lr=r["lr"], batch_size=r["batch_size"],
                       seed=r["seed"], progress=progress)
    texts = sorted(set(held_out.chosen + held_out.rejected))
    figures = {
        "heldout_accuracy": preference_accuracy(*pair_rewards(rm, tokenizer, held_out)),
        "noise_ceiling": preference_accuracy(held_out.chosen_scores, held_out.rejected_scores),
        "spearman_rho": spearman_correlation(reward_scores(rm, tokenizer, texts), gold_reward(texts)),
        "train_pairs": len(train),
        "heldout_pairs": len(held_out),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rm.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "recipe.json").write_text(json.dumps({"recipe": r, "figures": figures}, indent=2) + "\n")
    return rm, tokenizer, figures


def load_trained_reward_model():
    """The shipped reward model of notebook 02 (trained on simulated preferences; offline, instant).

    Returns:
        ``(rm, tokenizer)``; ``rm`` in eval mode, scores read at the last non-pad token.
    """
    if not (TRAINED_RM_PATH / "config.json").exists():
        raise FileNotFoundError(f"the trained reward model is missing from {TRAINED_RM_PATH}; "
                                "recreate it with `rlcourse train-reward-model`.")
    return load_reward_model(TRAINED_RM_PATH)


def shipped_figures() -> dict:
    """The figures the shipped reward model was saved with (``assets/tiny-rm/recipe.json``): held-out
    accuracy, noise ceiling, Spearman ρ with the gold reward, and the numbers of train and held-out pairs."""
    path = TRAINED_RM_PATH / "recipe.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; recreate the shipped reward model with `rlcourse train-reward-model`.")
    return json.loads(path.read_text(encoding="utf-8"))["figures"]
