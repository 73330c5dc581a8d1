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
  token of its sequence by the losses in :mod:`rlcourse.rl.losses`.

The masked statistics and the input checks live one layer below, in :mod:`rlcourse.rl.masked`
(``advantages.masked_mean`` and friends still resolve there).
"""

from __future__ import annotations

import torch

from rlcourse.rl.masked import (check_float, check_group_size, check_like, check_mask, check_nonempty, check_number,
                                masked_mean, masked_sum, masked_var)

__all__ = [
    "masked_mean",
    "masked_sum",
    "masked_var",
    "whiten",
    "discounted_returns",
    "gae",
    "group_advantages",
    "process_group_advantages",
    "leave_one_out_advantages",
    "batch_baseline_advantages",
]


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
    check_float("x", x)
    check_mask(mask, x, "x")
    check_nonempty(mask, 2)
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
    check_float("rewards", rewards, ranks=(2,), layout="(B, T)")
    check_mask(mask, rewards, "rewards", prefix=True)
    check_number("gamma", gamma, 0.0, 1.0)
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
    check_float("rewards", rewards, ranks=(2,), layout="(B, T)")
    check_like("values", values, "rewards", rewards)
    check_mask(mask, rewards, "rewards", prefix=True)
    check_number("gamma", gamma, 0.0, 1.0)
    check_number("lam", lam, 0.0, 1.0)
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


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4, scale: bool = True) -> torch.Tensor:
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
        scale: divide by the group's std (GRPO); ``False`` keeps ``r_i − mean(r_group)`` only
            (Dr. GRPO, Liu et al. 2025: the division gives the prompts whose samples mostly
            agree, too easy or too hard, the largest advantages, a difficulty bias).

    Returns:
        ``(N,)`` advantages, one per sequence.

    Example:
        >>> rewards = torch.tensor([1., 0., 3., 3.])
        >>> group_advantages(rewards, group_size=2)  # ±0.5 / (0.7071 + 1e-4); 0 / 1e-4
        tensor([ 0.7070, -0.7070,  0.0000,  0.0000])
    """
    check_float("rewards", rewards, ranks=(1,), layout="(N,)")
    check_group_size(group_size, rewards.shape[0], minimum=2)
    check_number("eps", eps, 0.0)
    if not isinstance(scale, bool):
        raise TypeError(f"scale must be True (divide by the group std, GRPO) or False (Dr. GRPO), got {scale!r}.")
    grouped = rewards.reshape(-1, group_size)  # (B, G)
    mean = grouped.mean(dim=1, keepdim=True)  # (B, 1)
    if not scale:
        return (grouped - mean).reshape(-1)  # (N,)
    std = grouped.std(dim=1, keepdim=True)  # (B, 1) unbiased
    return ((grouped - mean) / (std + eps)).reshape(-1)  # (N,)


def process_group_advantages(step_rewards: torch.Tensor, step_mask: torch.Tensor, mask: torch.Tensor,
                             group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO with process supervision (Shao et al. 2024, "DeepSeekMath", §4.1.3), per token (N, T).

    Each response i has rewards ``r_i^{(j)}`` at the last tokens ``index(j)`` of its steps j. All the
    step rewards R of a group (its G responses together) are normalised by their mean and
    (unbiased) std, ``r̃ = (r − mean(R)) / (std(R) + ε)``, and every token's advantage is the sum
    of the normalised rewards of the steps that end at or after it:
    ``A_{i,t} = Σ_{index(j) ≥ t} r̃_i^{(j)}``. So a token before a wrong step carries that step's
    low reward, and a token after it does not.

    Args:
        step_rewards: ``(N, T)`` the step rewards at step-end positions (any value elsewhere).
        step_mask: ``(N, T)``, 1 where a step ends (a subset of ``mask``).
        mask: ``(N, T)``, 1 on response tokens; advantages are 0 on padding.
        group_size: G ≥ 2, must divide N, each group's rows contiguous.
        eps: added to the std (a group whose step rewards all agree gets advantages 0).

    Example:
        >>> r = torch.tensor([[0., 0., 1.], [0., 0., 0.]])  # row 0: a right step ending at t=2; row 1: a wrong one at t=1
        >>> ends = torch.tensor([[0, 0, 1], [0, 1, 0]])
        >>> process_group_advantages(r, ends, torch.ones(2, 3), group_size=2)  # r̃ = ±0.707
        tensor([[ 0.7070,  0.7070,  0.7070],
                [-0.7070, -0.7070,  0.0000]])
    """
    check_float("step_rewards", step_rewards, ranks=(2,), layout="(N, T)")
    check_mask(mask, step_rewards, "step_rewards")
    check_mask(step_mask, step_rewards, "step_rewards")
    check_group_size(group_size, step_rewards.shape[0], minimum=2)
    check_number("eps", eps, 0.0)
    ends = step_mask.bool() & mask.bool()  # (N, T)
    N, T = step_rewards.shape
    grouped_r = torch.where(ends, step_rewards, 0.0).reshape(-1, group_size * T)  # (B, G·T)
    grouped_m = ends.reshape(-1, group_size * T).to(step_rewards.dtype)  # (B, G·T)
    count = grouped_m.sum(1, keepdim=True)  # (B, 1) steps in the group
    mean = grouped_r.sum(1, keepdim=True) / count.clamp(min=1)  # (B, 1)
    var = (((grouped_r - mean) * grouped_m) ** 2).sum(1, keepdim=True) / (count - 1).clamp(min=1)  # (B, 1) unbiased
    normalised = ((grouped_r - mean) / (var.sqrt() + eps) * grouped_m).reshape(N, T)  # (N, T), 0 off step ends
    to_go = normalised.flip(1).cumsum(1).flip(1)  # (N, T): Σ over steps ending at or after t
    return torch.where(mask.bool(), to_go, 0.0)


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
    check_float("rewards", rewards, ranks=(1, 2), layout="(N,) or (N, T)")
    check_group_size(group_size, rewards.shape[0], minimum=2)
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
    check_float("rewards", rewards, ranks=(1,), layout="(N,)")
    if rewards.shape[0] == 0:
        raise ValueError("rewards must hold at least one reward, got an empty tensor; pass one reward per completion.")
    return rewards - rewards.mean()  # (N,)
