"""Advantage estimators and masked statistics for RL on language models.

Every per-token tensor is *response-aligned* ``(B, T)``: position ``t`` is the
``t``-th generated token, and ``mask`` is 1 on response tokens (a contiguous prefix
of each row: responses are right-padded after their EOS) and 0 on padding. Padding
never changes a result, whatever it holds: it is replaced by 0 with ``torch.where``
before any arithmetic (not multiplied by 0, so an ``inf`` there cannot become ``nan``).

Glossary: B sequences, G samples per prompt (``group_size``), T response tokens,
N = B * G when rewards come in groups.

Two families live here:

* per-token estimators for a learned critic (PPO): :func:`discounted_returns`,
  :func:`gae`, and :func:`whiten` to normalise them;
* per-sequence estimators without a critic, one scalar reward per sample:
  :func:`batch_baseline_advantages` (REINFORCE), :func:`group_advantages` (GRPO) and
  :func:`leave_one_out_advantages` (RLOO). Their ``(N,)`` output is applied to every
  token of its sequence by the losses in :mod:`rlcourse.losses`.

The masked helpers (:func:`masked_mean`, :func:`masked_sum`, :func:`masked_var`) are
shared with :mod:`rlcourse.losses`.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

__all__ = [
    "masked_mean",
    "masked_sum",
    "masked_var",
    "whiten",
    "discounted_returns",
    "gae",
    "group_advantages",
    "leave_one_out_advantages",
    "batch_baseline_advantages",
]


# ---------------------------------------------------------------------------
# Input validation (shared with rlcourse.losses). Each check raises ValueError
# with one sentence: what was wrong, what was expected, what to do.
# ---------------------------------------------------------------------------


def _check_float(name: str, x, ranks: tuple[int, ...] | None = None, layout: str = "") -> None:
    """Require a floating-point tensor whose rank is in ``ranks`` (``layout`` names it)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            f"wrap it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; convert it with {name}.float()."
        )
    if ranks is not None and x.dim() not in ranks:
        raise ValueError(
            f"{name} must have shape {layout}, got shape {tuple(x.shape)}; "
            f"pass a tensor with {' or '.join(str(r) for r in ranks)} dimension(s)."
        )


def _check_like(name: str, x, ref_name: str, ref: torch.Tensor) -> None:
    """Require a floating-point tensor with exactly the shape and device of ``ref``."""
    _check_float(name, x)
    if x.shape != ref.shape:
        raise ValueError(
            f"{name} must have the same shape as {ref_name}, got {tuple(x.shape)} and {tuple(ref.shape)}; "
            f"pass both response-aligned, one entry per token (or per sequence)."
        )
    if x.device != ref.device:
        raise ValueError(
            f"{name} is on {x.device} but {ref_name} is on {ref.device}; move both to the same device."
        )


def _check_mask(mask, ref: torch.Tensor, ref_name: str, prefix: bool = False) -> None:
    """Require a 0/1 mask shaped like ``ref``; with ``prefix``, ones must come first in each row."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(
            f"mask must be a torch.Tensor, got {type(mask).__name__}; build it with torch.as_tensor(mask)."
        )
    if mask.is_complex():
        raise ValueError(f"mask must be bool, integer or float, got dtype {mask.dtype}; pass a 0/1 tensor.")
    if mask.shape != ref.shape:
        raise ValueError(
            f"mask must have the same shape as {ref_name}, got {tuple(mask.shape)} and {tuple(ref.shape)}; "
            f"build the mask from the same response-aligned batch."
        )
    if mask.device != ref.device:
        raise ValueError(
            f"mask is on {mask.device} but {ref_name} is on {ref.device}; move both to the same device."
        )
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError(
            "mask must contain only 0 and 1, got other values; pass 1 for response tokens and 0 for padding."
        )
    if prefix and mask.dim() == 2 and torch.any(mask[:, 1:] > mask[:, :-1]):
        raise ValueError(
            "mask must be a contiguous prefix of ones in each row (right-padded responses), got a 0 before a 1; "
            "cut each response at its first EOS and pad on the right."
        )


def _check_number(name: str, value, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """Require a real number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{']' if math.isfinite(high) else ')'}"
        raise ValueError(
            f"{name} must be a finite number in {interval}, got {value!r}; pass a plain Python float in that range."
        )


def _check_group_size(group_size, n: int, minimum: int) -> None:
    """Require an integer ``group_size >= minimum`` that divides ``n``."""
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < minimum:
        raise ValueError(
            f"group_size must be an integer >= {minimum}, got {group_size!r}; "
            f"sample at least {minimum} completions per prompt."
        )
    if n % group_size != 0:
        raise ValueError(
            f"group_size={group_size} does not divide the number of rewards N={n}; "
            f"pass exactly group_size rewards per prompt, each prompt's samples contiguous."
        )


def _check_nonempty(mask: torch.Tensor, minimum: int = 1) -> None:
    """Require at least ``minimum`` ones in ``mask``."""
    count = int(mask.sum().item())
    if count < minimum:
        raise ValueError(
            f"mask must select at least {minimum} token(s), got {count}; check the batch has non-empty responses."
        )


# ---------------------------------------------------------------------------
# Masked statistics
# ---------------------------------------------------------------------------


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Sum of ``x`` over entries where ``mask`` is 1: ``Σ_i x_i m_i``.

    Args:
        x: ``(B, T)`` (any shape) floating-point values.
        mask: same shape as ``x``; 1 keeps an entry, 0 drops it (bool, int or float).
        dim: dimension(s) to reduce; ``None`` reduces everything to a 0-dim tensor.

    Example:
        >>> x = torch.tensor([[1., 2., 3.], [4., 5., 6.]])
        >>> mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
        >>> masked_sum(x, mask)  # 1 + 2 + 4
        tensor(7.)
        >>> masked_sum(x, mask, dim=1)
        tensor([3., 4.])
    """
    _check_float("x", x)
    _check_mask(mask, x, "x")
    kept = torch.where(mask.bool(), x, 0.0)  # same shape as x; dropped entries are exactly 0
    return kept.sum() if dim is None else kept.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean of ``x`` over entries where ``mask`` is 1: ``Σ_i x_i m_i / Σ_i m_i``.

    With ``dim=None`` this is the token-level mean over the whole batch that
    :mod:`rlcourse.losses` uses to aggregate per-token losses. Reducing along ``dim``
    gives a mean per slice; a slice with no kept entry gives ``nan`` (0 / 0).

    Args:
        x: ``(B, T)`` (any shape) floating-point values.
        mask: same shape as ``x``; 1 keeps an entry, 0 drops it.
        dim: dimension(s) to reduce; ``None`` reduces everything (then the mask must
            keep at least one entry).

    Example:
        >>> x = torch.tensor([[1., 2., 3.], [4., 5., 6.]])
        >>> mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
        >>> masked_mean(x, mask)  # (1 + 2 + 4) / 3
        tensor(2.3333)
        >>> masked_mean(x, mask, dim=1)  # [(1 + 2) / 2, 4 / 1]
        tensor([1.5000, 4.0000])
    """
    _check_float("x", x)
    _check_mask(mask, x, "x")
    if dim is None:
        _check_nonempty(mask)
    kept = torch.where(mask.bool(), x, 0.0)  # same shape as x; dropped entries are exactly 0
    weights = mask.to(x.dtype)  # same shape as x
    if dim is None:
        return kept.sum() / weights.sum()
    return kept.sum(dim=dim) / weights.sum(dim=dim)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over all entries where ``mask`` is 1.

    ``μ = Σ x_i m_i / n``, ``Var = Σ (x_i − μ)² m_i / (n − 1)`` with ``n = Σ m_i``
    (Bessel's correction, like ``torch.var``); ``unbiased=False`` divides by ``n``.

    Args:
        x: ``(B, T)`` (any shape) floating-point values.
        mask: same shape as ``x``; must keep at least 2 entries when ``unbiased``.
        unbiased: divide by ``n − 1`` (True) or ``n`` (False).

    Example:
        >>> x = torch.tensor([[1., 2., 3.], [4., 5., 6.]])
        >>> mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
        >>> masked_var(x, mask)  # mean 7/3; ((4/3)² + (1/3)² + (5/3)²) / 2 = 7/3
        tensor(2.3333)
        >>> masked_var(x, mask, unbiased=False)  # same sum / 3 = 14/9
        tensor(1.5556)
    """
    _check_float("x", x)
    _check_mask(mask, x, "x")
    _check_nonempty(mask, 2 if unbiased else 1)
    mean = masked_mean(x, mask)  # ()
    centered = torch.where(mask.bool(), x - mean, 0.0)  # same shape as x
    n = mask.to(x.dtype).sum()  # ()
    return (centered**2).sum() / (n - 1 if unbiased else n)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise ``x`` to mean 0 and standard deviation 1 over the masked entries.

    ``x̂ = (x − μ) / sqrt(σ² + 1e-8)`` with ``μ``, ``σ²`` the masked mean and unbiased
    masked variance over the whole batch (:func:`masked_mean`, :func:`masked_var`).
    With ``shift_mean=False`` the mean is added back, ``x̂ = (x − μ)/sqrt(σ² + 1e-8) + μ``:
    only the scale changes (TRL does this for rewards, and whitens advantages with
    ``shift_mean=True``). PPO implementations whiten GAE advantages per batch
    (Schulman et al. 2017, "Proximal Policy Optimization Algorithms", via the OpenAI
    baselines code) so that the step size does not depend on the reward scale.
    Padding positions are 0 in the output.

    Args:
        x: ``(B, T)`` floating-point values, e.g. advantages.
        mask: ``(B, T)``, 1 on response tokens; must keep at least 2 entries.
        shift_mean: subtract the mean (True) or keep it (False).

    Returns:
        ``(B, T)`` whitened values, 0 where ``mask`` is 0.

    Example:
        >>> x = torch.tensor([[1., 3., 100.]])
        >>> mask = torch.tensor([[1, 1, 0]])
        >>> whiten(x, mask)  # mean 2, unbiased std sqrt(2)
        tensor([[-0.7071,  0.7071,  0.0000]])
    """
    _check_float("x", x)
    _check_mask(mask, x, "x")
    _check_nonempty(mask, 2)
    keep = mask.bool()
    x = torch.where(keep, x, 0.0)  # (B, T) padding -> 0
    mean = masked_mean(x, mask)  # ()
    var = masked_var(x, mask, unbiased=True)  # ()
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)  # (B, T)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(keep, whitened, 0.0)  # (B, T)


# ---------------------------------------------------------------------------
# Per-token estimators (with a critic)
# ---------------------------------------------------------------------------


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go of every response token.

    ``G_t = Σ_{k≥t} γ^{k−t} r_k = r_t + γ G_{t+1}``, summed over the response only
    (``G`` after the last response token is 0). This is the Monte-Carlo return that
    REINFORCE weights ``∇ log π(a_t|s_t)`` by (Williams 1992, "Simple statistical
    gradient-following algorithms for connectionist reinforcement learning").

    Args:
        rewards: ``(B, T)`` per-token rewards ``r_t`` (e.g. −β·KL on every token plus
            the score on the last response token).
        mask: ``(B, T)``, 1 on response tokens, a contiguous prefix of each row.
        gamma: discount ``γ`` in ``[0, 1]``.

    Returns:
        ``(B, T)`` returns ``G_t``, 0 where ``mask`` is 0.

    Example:
        >>> rewards = torch.tensor([[1., 0., 2., 9.]])  # the 9 is padding
        >>> mask = torch.tensor([[1, 1, 1, 0]])
        >>> discounted_returns(rewards, mask, gamma=0.5)  # [1 + 0.5·1, 0 + 0.5·2, 2, 0]
        tensor([[1.5000, 1.0000, 2.0000, 0.0000]])
    """
    _check_float("rewards", rewards, ranks=(2,), layout="(B, T)")
    _check_mask(mask, rewards, "rewards", prefix=True)
    _check_number("gamma", gamma, 0.0, 1.0)
    rewards = torch.where(mask.bool(), rewards, 0.0)  # (B, T); padding adds nothing
    running = torch.zeros_like(rewards[:, 0])  # (B,) G_{t+1}; 0 after the last token
    returns = []
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running  # (B,) stays 0 on padding (prefix mask)
        returns.append(running)
    return torch.stack(returns[::-1], dim=1)  # (B, T)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized Advantage Estimation (Schulman et al. 2015, "High-Dimensional
    Continuous Control Using Generalized Advantage Estimation").

    ``δ_t = r_t + γ V_{t+1} − V_t`` (with ``V`` after the last response token = 0: the
    episode ends at EOS), ``A_t = δ_t + γλ A_{t+1} = Σ_{k≥t} (γλ)^{k−t} δ_k``, and the
    critic's targets ``R_t = A_t + V_t``. ``λ = 0`` gives the one-step TD residual
    ``A_t = δ_t`` (low variance, biased by the critic); ``λ = 1`` gives the Monte-Carlo
    return minus the baseline, ``A_t = G_t − V_t`` (unbiased, high variance).

    Both outputs are targets, not functions to differentiate: ``rewards`` and ``values``
    are detached, so passing the critic's live output is safe.

    Args:
        rewards: ``(B, T)`` per-token rewards ``r_t``.
        values: ``(B, T)`` critic values ``V_t = V(s_t)``.
        mask: ``(B, T)``, 1 on response tokens, a contiguous prefix of each row.
        gamma: discount ``γ`` in ``[0, 1]``.
        lam: GAE ``λ`` in ``[0, 1]``.

    Returns:
        ``(advantages, returns)``, both ``(B, T)`` and 0 where ``mask`` is 0.

    Example:
        >>> rewards = torch.tensor([[0., 1.]])
        >>> values = torch.tensor([[0.5, 0.5]])
        >>> mask = torch.ones(1, 2)
        >>> # δ = [0 + 0.5 − 0.5, 1 + 0 − 0.5] = [0, 0.5];  A = [0 + 0.5·0.5, 0.5]
        >>> advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.5)
        >>> advantages
        tensor([[0.2500, 0.5000]])
        >>> returns
        tensor([[0.7500, 1.0000]])
    """
    _check_float("rewards", rewards, ranks=(2,), layout="(B, T)")
    _check_like("values", values, "rewards", rewards)
    _check_mask(mask, rewards, "rewards", prefix=True)
    _check_number("gamma", gamma, 0.0, 1.0)
    _check_number("lam", lam, 0.0, 1.0)
    keep = mask.bool()
    rewards = torch.where(keep, rewards.detach(), 0.0)  # (B, T)
    values = torch.where(keep, values.detach(), 0.0)  # (B, T)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)  # (B, T) V_{t+1}
    deltas = rewards + gamma * next_values - values  # (B, T); 0 on padding, V=0 after EOS
    running = torch.zeros_like(rewards[:, 0])  # (B,) A_{t+1}
    advantages = []
    for t in reversed(range(rewards.shape[1])):
        running = deltas[:, t] + gamma * lam * running  # (B,)
        advantages.append(running)
    advantages = torch.stack(advantages[::-1], dim=1)  # (B, T)
    returns = advantages + values  # (B, T); 0 on padding
    return advantages, returns


# ---------------------------------------------------------------------------
# Per-sequence estimators (no critic): rewards (N,), one per sampled completion
# ---------------------------------------------------------------------------


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """Group-normalised advantages of GRPO (Shao et al. 2024, "DeepSeekMath").

    For the G = ``group_size`` samples of one prompt,
    ``A_i = (r_i − mean(r_group)) / (std(r_group) + ε)``, with the unbiased standard
    deviation (``torch.std``'s default, as in TRL's GRPOTrainer). A group whose samples
    all got the same reward gets advantage 0: it carries no learning signal.

    Args:
        rewards: ``(N,)`` scalar rewards, N = B·G, each prompt's G samples contiguous
            (``[p0s0, p0s1, ..., p1s0, ...]``).
        group_size: G ≥ 2, must divide N.
        eps: ``ε`` ≥ 0 added to the std so equal-reward groups do not divide by 0.

    Returns:
        ``(N,)`` advantages, one per sequence.

    Example:
        >>> rewards = torch.tensor([1., 0., 3., 3.])
        >>> group_advantages(rewards, group_size=2)  # ±0.5 / (0.7071 + 1e-4); 0 / 1e-4
        tensor([ 0.7070, -0.7070,  0.0000,  0.0000])
    """
    _check_float("rewards", rewards, ranks=(1,), layout="(N,)")
    _check_group_size(group_size, rewards.shape[0], minimum=2)
    _check_number("eps", eps, 0.0)
    grouped = rewards.reshape(-1, group_size)  # (B, G)
    mean = grouped.mean(dim=1, keepdim=True)  # (B, 1)
    std = grouped.std(dim=1, keepdim=True)  # (B, 1) unbiased
    return ((grouped - mean) / (std + eps)).reshape(-1)  # (N,)


def leave_one_out_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """REINFORCE Leave-One-Out advantages (Ahmadian et al. 2024, "Back to Basics: Revisiting
    REINFORCE Style Optimization for Learning from Human Feedback in LLMs").

    ``A_i = r_i − (1/(G−1)) Σ_{j≠i} r_j``: each sample's baseline is the mean reward of
    the *other* samples of its prompt, so it does not depend on ``r_i`` and the
    gradient estimate stays unbiased. Equivalently ``A_i = G/(G−1) · (r_i − mean_group)``.
    With ``group_size = N`` the "group" is the whole batch: REINFORCE with a batch baseline
    that leaves each sample out (unbiased, unlike the plain batch mean of
    :func:`batch_baseline_advantages`).

    A ``(N, T)`` input is taken per position: ``A_{i,t} = r_{i,t} − mean_{j≠i} r_{j,t}``
    (e.g. rewards-to-go ``G_t``, whose baseline at position t is the others' ``G_t``).

    Args:
        rewards: ``(N,)`` scalar rewards, or ``(N, T)`` per-position values; each prompt's
            G samples contiguous.
        group_size: G ≥ 2 (one sample has no "others"), must divide N.

    Returns:
        Advantages of the input's shape.

    Example:
        >>> rewards = torch.tensor([1., 2., 3., 6.])
        >>> leave_one_out_advantages(rewards, group_size=4)  # 1 − 11/3, 2 − 10/3, 3 − 9/3, 6 − 6/3
        tensor([-2.6667, -1.3333,  0.0000,  4.0000])
        >>> leave_one_out_advantages(torch.tensor([[1., 2.], [3., 0.]]), group_size=2)  # per position
        tensor([[-2.,  2.],
                [ 2., -2.]])
    """
    _check_float("rewards", rewards, ranks=(1, 2), layout="(N,) or (N, T)")
    _check_group_size(group_size, rewards.shape[0], minimum=2)
    grouped = rewards.reshape(-1, group_size, *rewards.shape[1:])  # (B, G) or (B, G, T)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # (B, G[, T])
    return (grouped - others_mean).reshape(rewards.shape)  # (N,) or (N, T)


def batch_baseline_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE advantages with the batch-mean reward as baseline (Williams 1992).

    ``A_i = r_i − (1/N) Σ_j r_j``. A baseline that does not depend on the sample leaves the
    policy gradient's expectation unchanged and lowers its variance. The batch mean includes
    ``r_i`` itself, so it shrinks the expected gradient by the factor (N−1)/N (for independent
    samples); :func:`leave_one_out_advantages` with ``group_size = N`` removes that bias, and is
    what ``loops.ReinforceConfig`` uses.

    Args:
        rewards: ``(N,)`` scalar rewards, one per sampled completion.

    Returns:
        ``(N,)`` advantages, one per sequence.

    Example:
        >>> batch_baseline_advantages(torch.tensor([1., 2., 3., 6.]))  # mean 3
        tensor([-2., -1.,  0.,  3.])
    """
    _check_float("rewards", rewards, ranks=(1,), layout="(N,)")
    if rewards.shape[0] == 0:
        raise ValueError("rewards must hold at least one reward, got an empty tensor; pass one reward per completion.")
    return rewards - rewards.mean()  # (N,)
