"""What changed? Tools to compare a trained policy with its reference, and to measure credit assignment.

Notebook 05 asks what RL did to the model; these functions answer with numbers:

- :func:`word_frequency_shift`: which words the policy now writes more (or less) often;
- :func:`per_position_kl`: the exact KL(π‖π_ref) at every response position;
- :func:`kl_estimator_table` (from :func:`kl_estimator_stats`, :func:`kl_estimator_gradients`
  and :func:`gradient_agreement`): how the per-token estimators k1, k2, k3 of that KL behave on real samples (bias and noise),
  and which gradient each gives as a loss term or inside the reward, all computed exactly over
  the vocabulary;
- :func:`parameter_movement` / :func:`movement_by`: how far each part of θ moved,
  ``‖θ − θ_ref‖ / ‖θ_ref‖`` per tensor, per layer, per part (attention, MLP, embedding, norm)
  and per kind (weights vs biases).

Notebook 03 measures why one reward at the end of a long sequence trains badly:

- :func:`toy_gradient_variance`: the variance of the REINFORCE gradient estimate on a toy
  policy of T independent tokens, with the reward given once at the end (a sum, or a
  pass/fail verdict) or token by token as reward-to-go (dense), from many sampled sequences;
- :func:`toy_gradient_signal`: the squared norm of the gradient all of them estimate, exactly;
- :func:`toy_policy_training`: REINFORCE on that toy at any length (500 tokens in a second),
  where the same budget is spent with each kind of reward.

Glossary: N sequences, T response tokens, V vocabulary.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import torch
import torch.nn.functional as F

from rlcourse.model import loading, policy
from rlcourse.rl import losses
from rlcourse.utils import check as _check

__all__ = [
    "word_frequencies",
    "word_frequency_shift",
    "per_position_kl",
    "response_logits_pair",
    "KL_ESTIMATORS",
    "kl_estimator_stats",
    "kl_estimator_gradients",
    "gradient_agreement",
    "kl_estimator_table",
    "parameter_movement",
    "movement_by",
    "toy_gradient_variance",
    "toy_gradient_signal",
    "toy_policy_training",
    "steps_to_threshold",
]


def _check_texts(texts, name: str) -> None:
    _check(isinstance(texts, (list, tuple)) and len(texts) > 0 and all(isinstance(t, str) for t in texts),
           f"{name} must be a non-empty list of strings, got {type(texts).__name__}; pass e.g. generation.texts.")


# ----------------------------------------------------------------------------- words


def word_frequencies(texts: list[str]) -> dict[str, float]:
    """Share of each whitespace word among all words of ``texts`` (the shares sum to 1).

    Example:
        >>> word_frequencies(["a b", "a ."])
        {'a': 0.5, 'b': 0.25, '.': 0.25}
    """
    _check_texts(texts, "texts")
    counts = Counter(word for text in texts for word in text.split())
    total = sum(counts.values())
    _check(total > 0, "texts hold no words at all; pass non-empty responses.")
    return {word: n / total for word, n in counts.items()}


def word_frequency_shift(texts_before: list[str], texts_after: list[str], top: int = 10,
                         min_count: int = 1) -> list[tuple[str, float, float]]:
    """Words whose share grew most (first) and shrank most (last) from ``before`` to ``after``.

    The shift of word w is ``f_after(w) − f_before(w)``, with ``f`` from
    :func:`word_frequencies` (a word absent on one side has share 0 there).

    Args:
        texts_before, texts_after: responses of the reference and of the trained policy.
        top: how many words to return at each end.
        min_count: ignore words seen fewer times than this, both sides together.

    Returns:
        ``[(word, f_before, f_after), ...]``: the ``top`` largest increases, in decreasing
        order, then the ``top`` largest decreases, ending with the largest.

    Example:
        >>> word_frequency_shift(["bad film"], ["good film"], top=1)
        [('good', 0.0, 0.5), ('bad', 0.5, 0.0)]
    """
    _check(isinstance(top, int) and top >= 1, f"top must be an int >= 1, got {top!r}.")
    before, after = word_frequencies(texts_before), word_frequencies(texts_after)
    counts = Counter(w for t in list(texts_before) + list(texts_after) for w in t.split())
    words = [w for w in set(before) | set(after) if counts[w] >= min_count]
    shift = {w: after.get(w, 0.0) - before.get(w, 0.0) for w in words}
    ranked = sorted(words, key=lambda w: (-shift[w], w))  # ties broken by the word: deterministic
    up = [w for w in ranked if shift[w] > 0][:top]
    down = [w for w in ranked[::-1] if shift[w] < 0][:top][::-1]
    return [(w, before.get(w, 0.0), after.get(w, 0.0)) for w in up + down]


# ----------------------------------------------------------------------------- KL per position


@torch.no_grad()
def response_logits_pair(model, ref_model, gen: policy.Generation) -> tuple[torch.Tensor, torch.Tensor]:
    """Full next-token logits of π and π_ref at every response position of ``gen``: two ``(N, T, V)``."""
    T = gen.response_ids.shape[1]
    logits = policy.response_logits(model, gen.input_ids, gen.attention_mask, T)  # (N, T, V)
    ref_logits = policy.response_logits(ref_model, gen.input_ids, gen.attention_mask, T)  # (N, T, V)
    return logits, ref_logits


@torch.no_grad()
def per_position_kl(model, ref_model, gen: policy.Generation) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``KL(π(·|s_t) ‖ π_ref(·|s_t))`` at every response position, averaged over the sequences.

    ``KL_t = Σ_a π(a|s_t) (log π(a|s_t) − log π_ref(a|s_t))``: summed over the whole
    vocabulary, not estimated from the sampled token, so it is ≥ 0 at every position.

    Args:
        model, ref_model: the trained policy π and the reference π_ref.
        gen: responses sampled from ``model`` (the states s_t where the two are compared).

    Returns:
        ``(kl_per_token, kl_by_position)``: ``(N, T)`` KL_t (0 after each response's end)
        and ``(T,)`` its mean over the sequences still running at t (0 where none is).
    """
    mask = gen.response_mask.float()  # (N, T)
    logits, ref_logits = response_logits_pair(model, ref_model, gen)  # (N, T, V) each
    logp, ref_logp = F.log_softmax(logits, -1), F.log_softmax(ref_logits, -1)  # (N, T, V)
    kl = (logp.exp() * (logp - ref_logp)).sum(-1).clamp(min=0.0) * mask  # (N, T)
    by_position = kl.sum(0) / mask.sum(0).clamp(min=1.0)  # (T,)
    return kl, by_position


# ----------------------------------------------------------------------------- KL estimators, exactly

# The per-token estimators of KL(π‖π_ref) in rlcourse.rl.losses, by name (Schulman 2020).
KL_ESTIMATORS = {"k1": losses.kl_k1, "k2": losses.kl_k2, "k3": losses.kl_k3}


def _check_logits_pair(logits, ref_logits, mask) -> torch.Tensor:
    """Validate ``(N, T, V)`` logits, ref_logits and a ``(N, T)`` 0/1 mask; return the mask as a bool tensor."""
    _check(isinstance(logits, torch.Tensor) and logits.dim() == 3,
           f"logits must be a (N, T, V) tensor, got {getattr(logits, 'shape', type(logits).__name__)}; "
           "pass the full next-token logits at the response positions (response_logits_pair).")
    _check(isinstance(ref_logits, torch.Tensor) and ref_logits.shape == logits.shape,
           f"ref_logits must have the shape of logits {tuple(logits.shape)}, got "
           f"{getattr(ref_logits, 'shape', type(ref_logits).__name__)}; score the same positions with both models.")
    _check(isinstance(mask, torch.Tensor) and mask.shape == logits.shape[:2]
           and bool(((mask == 0) | (mask == 1)).all()),
           f"mask must be a 0/1 tensor of shape {tuple(logits.shape[:2])}, got "
           f"{getattr(mask, 'shape', type(mask).__name__)}; pass gen.response_mask.")
    _check(bool(mask.any()), "mask holds no response token; pass a batch with at least one.")
    return mask.bool()


def kl_estimator_stats(logits: torch.Tensor, ref_logits: torch.Tensor, actions: torch.Tensor,
                       mask: torch.Tensor) -> dict:
    """Bias and noise of k1, k2, k3 against the exact KL(π‖π_ref), position by position.

    At each position, with ``r(a) = π_ref(a)/π(a)``, everything is summed over the vocabulary
    (in float64), not sampled:

        exact      KL_t = Σ_a π(a) log(π(a)/π_ref(a))
        expected   E_t[k] = Σ_a π(a) k(a)          (k1 = −log r, k2 = ½(log r)², k3 = (r−1) − log r)
        bias       mean_t (E_t[k] − KL_t)          (0 for k1 and k3; k2's is > 0 far from π_ref)
        exact_std  sqrt(mean_t Var_{a~π}[k(a)])    (the noise of a one-token estimate)

    and, on the tokens actually sampled, ``samples = k(a_t)`` and ``std``, the standard deviation
    of ``k(a_t) − KL_t`` over them (what ``exact_std`` predicts, with sampling noise).

    Args:
        logits, ref_logits: ``(N, T, V)`` next-token logits of π and π_ref at the response positions.
        actions: ``(N, T)`` the sampled tokens ``a_t`` (drawn from π).
        mask: ``(N, T)``, 1 on response tokens.

    Returns:
        ``{"exact": (N, T), "k1": {...}, "k2": {...}, "k3": {...}}``, each estimator's dict holding
        ``"expected"`` ``(N, T)``, ``"samples"`` ``(N, T)`` (0 on padding), and floats
        ``"bias"``, ``"exact_std"``, ``"std"``.

    Example (π = [½, ¼, ¼], π_ref = [¼, ½, ¼], so KL = ¼ log 2):
        >>> logits = torch.tensor([0.5, 0.25, 0.25]).log()[None, None]  # (1, 1, 3)
        >>> ref_logits = torch.tensor([0.25, 0.5, 0.25]).log()[None, None]
        >>> stats = kl_estimator_stats(logits, ref_logits, torch.tensor([[0]]), torch.ones(1, 1))
        >>> # k2's bias: ⅜(log 2)² − ¼ log 2
        >>> round(float(stats["exact"]), 4), round(stats["k3"]["bias"], 6), round(stats["k2"]["bias"], 4)
        (0.1733, 0.0, 0.0069)
    """
    keep = _check_logits_pair(logits, ref_logits, mask)  # (N, T)
    _check(isinstance(actions, torch.Tensor) and actions.shape == mask.shape and not actions.is_floating_point()
           and bool(((actions >= 0) & (actions < logits.shape[-1]))[keep].all()),
           f"actions must be integer token ids in [0, {logits.shape[-1]}) of shape {tuple(mask.shape)}; "
           "pass gen.response_ids.")
    logp = F.log_softmax(logits.double(), -1)  # (N, T, V)
    ref_logp = F.log_softmax(ref_logits.double(), -1)  # (N, T, V)
    p = logp.exp()  # (N, T, V)
    exact = torch.where(keep, (p * (logp - ref_logp)).sum(-1), 0.0)  # (N, T)
    sampled = actions.long().masked_fill(~keep, 0)[..., None]  # (N, T, 1); padding reads token 0, then is zeroed
    out: dict = {"exact": exact}
    for name, estimator in KL_ESTIMATORS.items():
        k = estimator(logp, ref_logp)  # (N, T, V): k(a) for every token a
        expected = (p * k).sum(-1)  # (N, T)
        variance = (p * k**2).sum(-1) - expected**2  # (N, T) Var_{a~π}[k(a)]
        samples = torch.where(keep, k.gather(-1, sampled).squeeze(-1), 0.0)  # (N, T)
        out[name] = {
            "expected": torch.where(keep, expected, 0.0),
            "samples": samples,
            "bias": float((expected - exact)[keep].mean()),
            "exact_std": math.sqrt(max(float(variance[keep].mean()), 0.0)),
            "std": float((samples - exact)[keep].std()) if int(keep.sum()) > 1 else 0.0,
        }
    return out


def kl_estimator_gradients(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> dict:
    """The expected gradient, with respect to the logits z of π, of each KL estimator in each use.

    Exactly, summed over the vocabulary (no sampling noise), at every position::

        "k/loss"    Σ_a sg(π(a)) ∇_z k(a)              k differentiated as a loss term, a ~ π
                                                         (GRPO's β·k3 in the loss)
        "k/reward"  Σ_a π(a) sg(k(a)) ∇_z log π(a)      k inside the reward, REINFORCE-style
                                                         (−β·k1 in the per-token reward)
        "reverse"   ∇_z KL(π‖π_ref) = Σ_a π(a) (log π(a)/π_ref(a) − KL) e_a    (what the penalty means)
        "forward"   ∇_z KL(π_ref‖π) = π − π_ref

    (sg = stop-gradient.) The two uses of one k add up to ``∇_z Σ_a π(a) k(a)``. With
    ``∇_z k(a) = −f'(log r_a) ∇_z log π(a)`` one finds k1/loss = 0, k2/loss = reverse,
    k3/loss = forward (``∇k3 = (1 − r)∇log π``), k1/reward = reverse, and
    k3/reward = reverse − forward (Tang & Munos 2025, "On a few pitfalls in KL divergence
    gradient estimation for RL"). Per position only: how a token changes later states is left out.

    Args:
        logits, ref_logits: ``(N, T, V)`` next-token logits of π and π_ref.
        mask: ``(N, T)``, 1 on response tokens.

    Returns:
        ``{"reverse", "forward", "k1/loss", "k1/reward", "k2/loss", …}``, each ``(N, T, V)``
        float64, 0 on padding.
    """
    keep = _check_logits_pair(logits, ref_logits, mask)[..., None]  # (N, T, 1)
    z = logits.detach().double().requires_grad_(True)  # (N, T, V)
    logp = F.log_softmax(z, -1)  # (N, T, V)
    ref_logp = F.log_softmax(ref_logits.detach().double(), -1)  # (N, T, V)
    p = logp.detach().exp()  # (N, T, V) sg(π)
    log_ratio = logp.detach() - ref_logp  # (N, T, V) log π/π_ref
    kl = (p * log_ratio).sum(-1, keepdim=True)  # (N, T, 1)
    grads = {"reverse": p * (log_ratio - kl), "forward": p - ref_logp.exp()}  # (N, T, V) each, closed forms
    for name, estimator in KL_ESTIMATORS.items():
        k = estimator(logp, ref_logp)  # (N, T, V) k(a) for every a, with gradient through log π
        # Positions do not interact, so the gradient of a sum over positions is each position's gradient.
        uses = {"loss": (p * k).sum(), "reward": (p * k.detach() * logp).sum()}
        for use, surrogate in uses.items():
            (grads[f"{name}/{use}"],) = torch.autograd.grad(surrogate, z, retain_graph=True)
    return {key: torch.where(keep, g, 0.0) for key, g in grads.items()}


def gradient_agreement(grad: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """How well ``grad`` points like ``target``: mean over positions of cosine and of norm ratio.

    ``cos_t = ⟨g_t, g*_t⟩ / (‖g_t‖ ‖g*_t‖)`` and ``ratio_t = ‖g_t‖ / ‖g*_t‖`` over the V logits of
    position t, averaged over the response positions. A gradient under 1e-9 of the target's norm
    is zero (its direction is rounding noise) and counts as cosine 0.

    Args:
        grad, target: ``(N, T, V)``, e.g. from :func:`kl_estimator_gradients`.
        mask: ``(N, T)``, 1 on response tokens.

    Returns:
        ``(mean cosine, mean norm ratio)``.

    Example:
        >>> g = torch.tensor([[[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]])  # (1, 2, 3)
        >>> cos, ratio = gradient_agreement(g, torch.tensor([[[2.0, -2.0, 0.0], [1.0, -1.0, 0.0]]]), torch.ones(1, 2))
        >>> round(cos, 6), round(ratio, 6)  # positions: (cos 1, ratio ½) and (cos 0, ratio 0)
        (0.5, 0.25)
    """
    _check(grad.shape == target.shape and grad.dim() == 3,
           f"grad and target must be two (N, T, V) tensors of one shape, "
           f"got {tuple(grad.shape)} and {tuple(target.shape)}.")
    keep = _check_logits_pair(grad, target, mask)  # (N, T)
    grad, target = grad.double()[keep], target.double()[keep]  # (M, V) the response positions
    norm, target_norm = grad.norm(dim=-1), target.norm(dim=-1)  # (M,)
    _check(bool((target_norm > 0).all()), "target is zero at some response position (π = π_ref there?); "
           "compare where the target gradient exists.")
    ratio = norm / target_norm  # (M,)
    cos = torch.where(ratio > 1e-9, (grad * target).sum(-1) / (norm * target_norm).clamp(min=1e-300), 0.0)  # (M,)
    return float(cos.mean()), float(ratio.mean())


def kl_estimator_table(logits: torch.Tensor, ref_logits: torch.Tensor, actions: torch.Tensor,
                       mask: torch.Tensor) -> list[dict]:
    """One row per estimator (k1, k2, k3): its bias and noise, and its gradient in both uses.

    Combines :func:`kl_estimator_stats` and :func:`kl_estimator_gradients`; the gradients are
    compared with ∇KL(π‖π_ref) ("rev") and ∇KL(π_ref‖π) ("fwd") by :func:`gradient_agreement`.

    Args:
        logits, ref_logits: ``(N, T, V)`` next-token logits of π and π_ref at the response positions.
        actions: ``(N, T)`` the tokens sampled from π; mask: ``(N, T)``, 1 on response tokens.

    Returns:
        ``[{"estimator", "bias", "exact_std", "std", "loss_cos_rev", "loss_cos_fwd", "loss_size",
        "reward_cos_rev", "reward_cos_fwd", "reward_size"}, ...]``, where ``*_size`` is
        ``‖g‖ / ‖∇KL(π‖π_ref)‖`` averaged over positions.
    """
    stats = kl_estimator_stats(logits, ref_logits, actions, mask)
    grads = kl_estimator_gradients(logits, ref_logits, mask)
    rows = []
    for name in KL_ESTIMATORS:
        row = {"estimator": name, **{key: stats[name][key] for key in ("bias", "exact_std", "std")}}
        for use in ("loss", "reward"):
            cos_rev, size = gradient_agreement(grads[f"{name}/{use}"], grads["reverse"], mask)
            cos_fwd, _ = gradient_agreement(grads[f"{name}/{use}"], grads["forward"], mask)
            row.update({f"{use}_cos_rev": cos_rev, f"{use}_cos_fwd": cos_fwd, f"{use}_size": size})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- parameters


def _layer(name: str) -> str:
    match = re.search(r"layers\.(\d+)\.", name)
    return f"layer {match.group(1)}" if match else "outside the layers"


@torch.no_grad()
def parameter_movement(model, ref_model) -> list[dict]:
    """How far every named tensor of θ moved: ``‖θ − θ_ref‖₂ / ‖θ_ref‖₂`` (Frobenius norms).

    Args:
        model, ref_model: the same architecture (e.g. a trained policy and its frozen copy).

    Returns:
        one dict per parameter tensor: ``{"name", "layer", "part", "kind", "numel",
        "delta_sq", "ref_sq", "relative"}``, where ``delta_sq = ‖θ − θ_ref‖²``,
        ``ref_sq = ‖θ_ref‖²`` and ``relative = sqrt(delta_sq / ref_sq)`` (``inf`` when
        θ_ref is all zeros and θ moved). ``part``/``kind`` come from
        :func:`rlcourse.model.loading.parameter_kind`.
    """
    ref = dict(ref_model.named_parameters())
    rows = []
    for name, param in model.named_parameters():
        _check(name in ref and ref[name].shape == param.shape,
               f"parameter {name} has no counterpart of the same shape in ref_model; compare two copies of one model.")
        theta, theta_ref = param.detach().double().cpu(), ref[name].detach().double().cpu()
        delta_sq, ref_sq = float(((theta - theta_ref) ** 2).sum()), float((theta_ref**2).sum())
        part, kind = loading.parameter_kind(name)
        relative = math.sqrt(delta_sq / ref_sq) if ref_sq > 0 else (math.inf if delta_sq > 0 else 0.0)
        rows.append({"name": name, "layer": _layer(name), "part": part, "kind": kind, "numel": param.numel(),
                     "delta_sq": delta_sq, "ref_sq": ref_sq, "relative": relative})
    return rows


def movement_by(rows: list[dict], key: str | tuple[str, ...]) -> dict:
    """Relative movement of groups of tensors: ``sqrt(Σ ‖Δθ‖² / Σ ‖θ_ref‖²)`` over each group.

    Pooling squared norms (not averaging ratios) makes a group behave like one big tensor.

    Args:
        rows: from :func:`parameter_movement`.
        key: ``"layer"``, ``"part"``, ``"kind"`` or a tuple of them, e.g. ``("part", "kind")``.

    Returns:
        ``{group: relative movement}``, sorted by group.

    Example:
        >>> rows = [{"kind": "weight", "delta_sq": 1.0, "ref_sq": 100.0},
        ...         {"kind": "weight", "delta_sq": 3.0, "ref_sq": 300.0},
        ...         {"kind": "bias", "delta_sq": 1.0, "ref_sq": 4.0}]
        >>> movement_by(rows, "kind")
        {'bias': 0.5, 'weight': 0.1}
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    _check(len(rows) > 0 and all(k in rows[0] for k in keys),
           f"key must name fields of the rows (layer, part, kind), got {key!r}.")
    sums: dict = {}
    for row in rows:
        group = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        delta, ref = sums.get(group, (0.0, 0.0))
        sums[group] = (delta + row["delta_sq"], ref + row["ref_sq"])
    return {g: (math.sqrt(d / r) if r > 0 else (math.inf if d > 0 else 0.0)) for g, (d, r) in sorted(sums.items())}


# ----------------------------------------------------------------------------- credit assignment (notebook 03)


TOY_SCORES = ("sum", "verdict")


def _reward_to_go_kernel(length: int, gamma: float) -> torch.Tensor:
    """``(T, T)`` matrix K with ``K[t, k] = γ^{k−t}`` for k ≥ t, else 0: ``rewards @ K.T`` is every G_t at once.

    The same returns as :func:`rlcourse.rl.advantages.discounted_returns` on an all-ones mask, as one
    matrix product instead of a loop over T (the toys call it at T = 500, every step).
    """
    discounts = gamma ** torch.arange(length, dtype=torch.float64)  # (T,) γ^k
    lag = torch.arange(length)[None, :] - torch.arange(length)[:, None]  # (T, T) k − t
    return torch.where(lag >= 0, discounts[lag.clamp(min=0)], 0.0)


def _toy_score(actions: torch.Tensor, vocab_size: int, score: str) -> tuple[torch.Tensor, float]:
    """The end-of-sequence score of toy sequences ``(S, T)`` and its exact expectation at θ = 0.

    ``"sum"``: ``R = Σ_t 1[a_t = 0]``, the count of rewarded tokens (unbounded, Var ∝ T).
    ``"verdict"``: ``R = 1[count ≥ ⌈T/V⌉]``, a pass/fail judgement of the whole sequence
    (bounded, Var ≤ 1/4 at any length), like a unit test or a checked answer.
    """
    T, p = actions.shape[1], 1.0 / vocab_size
    count = (actions == 0).double().sum(1)  # (S,)
    if score == "sum":
        return count, p * T
    k = math.ceil(p * T)
    tail = torch.distributions.Binomial(T, torch.tensor(p, dtype=torch.float64)).log_prob(
        torch.arange(k, T + 1, dtype=torch.float64)).exp().sum()  # P(Bin(T, p) ≥ k)
    return (count >= k).double(), float(tail)


def toy_gradient_variance(length: int, num_samples: int = 2000, vocab_size: int = 4, dense: bool = False,
                          gamma: float = 1.0, seed: int = 0, score: str = "sum") -> float:
    """Total variance of the REINFORCE gradient estimate on a toy policy of ``length`` tokens.

    The toy: each position t draws a token a_t from its own softmax(θ_t), θ_t ∈ R^V, all
    θ = 0 (uniform, p = 1/V); token 0 earns reward r_t = 1, the others 0. One sampled
    sequence gives the estimate

        end score:              ĝ = Σ_t ∇_θ log π(a_t) · (R − E[R])
        dense (reward-to-go):   ĝ = Σ_t ∇_θ log π(a_t) · (G_t − E[G_t]),  G_t = Σ_{k≥t} γ^{k−t} r_k

    with ``∇_{θ_t} log π(a_t) = onehot(a_t) − softmax(θ_t)`` and the exact expected value as
    baseline. The end score R is ``score="sum"`` (R = Σ_t r_t, what the dense rewards add up
    to) or ``"verdict"`` (pass/fail: at least ⌈T/V⌉ rewarded tokens; see :func:`_toy_score`).
    With γ = 1 the sum and its reward-to-go are unbiased for the same gradient; γ < 1 drops the
    credit a token gets for later rewards (no bias in this toy, whose tokens are independent;
    a bias wherever a token changes what follows it, as in a language model).
    Returns ``Σ_i Var(ĝ_i)`` over all ``T·V`` coordinates, estimated from ``num_samples``
    sampled sequences.

    Returns:
        the total variance (a float ≥ 0). The sum grows like T² (every token's weight carries
        the noise of all T tokens); the verdict like T (its weight is bounded); dense with γ = 1
        about half of the sum; dense with γ < 1 like T.
    """
    _check(isinstance(length, int) and length >= 1, f"length must be an int >= 1, got {length!r}.")
    _check(isinstance(num_samples, int) and num_samples >= 2, f"num_samples must be an int >= 2, got {num_samples!r}.")
    _check(0.0 <= gamma <= 1.0, f"gamma must lie in [0, 1], got {gamma!r}.")
    _check(score in TOY_SCORES, f"score must be one of {TOY_SCORES}, got {score!r}.")
    _check(not (dense and score != "sum"), "dense rewards add up to the 'sum' score; pass score='sum' with dense=True.")
    generator = torch.Generator().manual_seed(seed)
    p = 1.0 / vocab_size
    probs = torch.full((length, vocab_size), p, dtype=torch.float64)  # (T, V) softmax(θ = 0)
    actions = torch.randint(vocab_size, (num_samples, length), generator=generator)  # (S, T)
    score_fn = F.one_hot(actions, vocab_size).double() - probs  # (S, T, V) ∇_θ log π(a_t)
    rewards = (actions == 0).double()  # (S, T) r_t
    if dense:
        kernel = _reward_to_go_kernel(length, gamma)  # (T, T)
        weights = rewards @ kernel.T - p * kernel.sum(1)  # (S, T) G_t − E[G_t]
    else:
        R, expected = _toy_score(actions, vocab_size, score)  # (S,), E[R]
        weights = (R - expected)[:, None].expand(-1, length)  # (S, T) R − E[R] on every token
    grads = score_fn * weights[..., None]  # (S, T, V) one gradient estimate per sample
    return float(grads.reshape(num_samples, -1).var(0).sum())


def toy_gradient_signal(length: int, vocab_size: int = 4, score: str = "sum") -> float:
    """``‖∇_θ E[R]‖²`` at θ = 0 for the toy of :func:`toy_gradient_variance`, exactly.

    What every estimator of that function estimates (dense with γ = 1 included). Per position,
    ``∇_{θ_t} p_t(0) = p (e_0 − p·1)`` with squared norm ``c = p²((1 − p)² + (V − 1) p²)``:

    - sum: ``∂E[R]/∂p_t(0) = 1``, so the signal is ``T·c`` (grows like T);
    - verdict: ``∂P(pass)/∂p_t(0) = P(Bin(T − 1, p) = k − 1)`` (one token tips the verdict only
      when the others sit exactly at the bar), so ``T·c·P(…)²`` (about constant in T).

    Example:
        >>> toy_gradient_signal(1, vocab_size=2)  # p = 1/2: c = 1/4 · (1/4 + 1/4)
        0.125
    """
    _check(isinstance(length, int) and length >= 1, f"length must be an int >= 1, got {length!r}.")
    _check(score in TOY_SCORES, f"score must be one of {TOY_SCORES}, got {score!r}.")
    p = 1.0 / vocab_size
    c = p ** 2 * ((1 - p) ** 2 + (vocab_size - 1) * p ** 2)
    if score == "sum":
        return length * c
    k = math.ceil(p * length)
    tip = torch.distributions.Binomial(length - 1, torch.tensor(p, dtype=torch.float64)).log_prob(
        torch.tensor(float(k - 1), dtype=torch.float64)).exp().item() if length > 1 else float(k == 1)
    return length * c * tip ** 2


def toy_policy_training(length: int, score: str = "sum", dense: bool = False, gamma: float = 1.0,
                        num_steps: int = 200, batch_size: int = 16, lr: float = 0.05, vocab_size: int = 4,
                        seed: int = 0) -> list[dict]:
    """Train the toy policy of :func:`toy_gradient_variance` with REINFORCE and Adam; one dict per step.

    Each step samples ``batch_size`` sequences, scores them (the end score ``score``, or dense
    rewards with their discounted reward-to-go), subtracts the leave-one-out mean of the other
    sequences (per position for dense) and takes one Adam step on θ ``(T, V)``. The same loss,
    optimiser and budget for every reward design, so only the credit each token gets differs.

    Returns:
        ``[{"step", "p_correct"}]`` with ``p_correct`` the mean over positions of π(token 0),
        0.25 at the start (V = 4), 1 when every position has learned its action.
    """
    _check(isinstance(length, int) and length >= 1, f"length must be an int >= 1, got {length!r}.")
    _check(isinstance(batch_size, int) and batch_size >= 2, f"batch_size must be an int >= 2, got {batch_size!r}.")
    _check(score in TOY_SCORES, f"score must be one of {TOY_SCORES}, got {score!r}.")
    _check(not (dense and score != "sum"), "dense rewards add up to the 'sum' score; pass score='sum' with dense=True.")
    _check(0.0 <= gamma <= 1.0, f"gamma must lie in [0, 1], got {gamma!r}.")
    generator = torch.Generator().manual_seed(seed)
    theta = torch.zeros(length, vocab_size, dtype=torch.float64, requires_grad=True)  # (T, V)
    optimizer = torch.optim.Adam([theta], lr=lr)
    kernel = _reward_to_go_kernel(length, gamma)  # (T, T)
    history = []
    for step in range(num_steps):
        probs = theta.detach().softmax(-1)  # (T, V)
        history.append({"step": step, "p_correct": float(probs[:, 0].mean())})
        actions = torch.multinomial(probs, batch_size, replacement=True, generator=generator).T  # (N, T)
        if dense:
            returns = (actions == 0).double() @ kernel.T  # (N, T) G_t
        else:
            returns = _toy_score(actions, vocab_size, score)[0][:, None].expand(-1, length)  # (N, T) R on every token
        baseline = (returns.sum(0, keepdim=True) - returns) / (batch_size - 1)  # (N, T) leave-one-out mean
        logp = theta.log_softmax(-1).gather(1, actions.T).T  # (N, T) log π(a_t)
        loss = -((returns - baseline) * logp).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return history


def steps_to_threshold(history: list[dict], threshold: float, metric: str = "gold/reward", window: int = 5):
    """First step at which the trailing ``window``-step mean of ``metric`` reaches ``threshold``.

    Returns:
        the step index (0-based), or ``None`` when the run never gets there.

    Example:
        >>> steps_to_threshold([{"r": 0.0}, {"r": 1.0}, {"r": 1.0}], threshold=0.9, metric="r", window=2)
        2
    """
    _check(isinstance(window, int) and window >= 1, f"window must be an int >= 1, got {window!r}.")
    _check(len(history) > 0 and metric in history[0],
           f"history must be a non-empty list of metric dicts holding '{metric}'.")
    values = [h[metric] for h in history]
    for step in range(len(values)):
        recent = values[max(0, step - window + 1): step + 1]
        if sum(recent) / len(recent) >= threshold:
            return step
    return None
