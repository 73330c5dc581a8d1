"""Policy, value and preference losses, and per-token KL estimators.

Aggregation. Every per-token loss ``ℓ_{b,t}`` here is reduced with one token-level
mean over ALL response tokens in the batch,

    loss = Σ_{b,t} ℓ_{b,t} m_{b,t} / Σ_{b,t} m_{b,t},

so every generated token is one action with equal weight and long responses are not
down-weighted (DAPO's token-level loss and TRL's default; Dr. GRPO likewise removes the
per-sequence length normalisation). The alternative, a mean over
each sequence's tokens followed by a mean over sequences (the original GRPO of
Shao et al. 2024), gives a token of a short response more weight than a token of a
long one: correct short answers are pushed up harder, and wrong long answers are
pushed down more gently, which biases training towards longer wrong responses.

Conventions: tensors are response-aligned ``(B, T)`` (position t is the t-th response
token), ``mask`` is 1 on response tokens and 0 on padding, and padding never changes
a loss, its gradient or a statistic. ``advantages`` may be ``(B,)`` (one per sequence,
applied to every token, as in GRPO / RLOO / REINFORCE) or ``(B, T)`` (per token, as
with GAE). Advantages, ``old_logprobs``, ``old_values``, ``returns`` and reference
log-probs are treated as constants (detached). Losses are 0-dim tensors; statistics
are detached 0-dim tensors in a dict. NaN checks are left to the training loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlcourse.rl.masked import check_float, check_like, check_mask, check_number, masked_mean, masked_var

__all__ = [
    "AGGREGATIONS",
    "aggregate_loss",
    "reinforce_loss",
    "ppo_clip_loss",
    "value_loss",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "dpo_loss",
    "sft_loss",
]


AGGREGATIONS = ("token_mean", "sequence_mean", "constant")


def aggregate_loss(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "token_mean",
                   max_tokens: int | None = None) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss over response tokens, three ways (the length-bias lesson).

    - ``"token_mean"``: ``Σ_{b,t} ℓ m / Σ_{b,t} m``, every token of the batch weighs the same
      (DAPO, Yu et al. 2025; TRL's default; this module's default);
    - ``"sequence_mean"``: ``(1/B) Σ_b (Σ_t ℓ_{b,t} m_{b,t} / Σ_t m_{b,t})``, each response's own
      token mean, then the mean over responses (the original GRPO objective, Shao et al. 2024): a
      token of a response of length L weighs 1/L, so long responses are pushed less per token;
    - ``"constant"``: ``(1/B) Σ_b Σ_t ℓ_{b,t} m_{b,t} / L_max`` with ``L_max = max_tokens``, the
      generation budget (``max_new_tokens``), a constant of the run (Dr. GRPO, Liu et al. 2025; TRL's
      ``loss_type="dr_grpo"``): no length enters the weights, and the loss does not depend on how
      wide this batch happens to be padded.

    Padding never contributes (it may hold any value, NaN included). Every row of ``mask`` must
    keep at least one token for ``"sequence_mean"``; ``max_tokens`` is needed by ``"constant"`` only
    (and must be at least the longest response).

    Example:
        >>> per_token = torch.tensor([[1., 1., 1., 1.], [4., 0., 0., 0.]])
        >>> mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
        >>> [aggregate_loss(per_token, mask, m, max_tokens=8).item() for m in AGGREGATIONS]  # 8/5, (1 + 4)/2, (4/8 + 4/8)/2
        [1.600000023841858, 2.5, 0.5]
    """
    check_float("per_token", per_token, ranks=(2,), layout="(B, T)")
    check_mask(mask, per_token, "per_token")
    if mode not in AGGREGATIONS:
        raise ValueError(f"mode must be one of {', '.join(AGGREGATIONS)}, got {mode!r}.")
    if mode == "token_mean":
        return masked_mean(per_token, mask)
    if mode == "sequence_mean":
        if bool((mask.sum(1) == 0).any()):
            raise ValueError("sequence_mean needs at least one response token in every row of mask; "
                             "drop empty responses or use token_mean.")
        return masked_mean(per_token, mask, dim=1).mean()
    longest = int(mask.sum(1).max()) if mask.numel() else 0
    if type(max_tokens) is not int or max_tokens < max(1, longest):
        raise ValueError(f"mode='constant' divides by the generation budget: pass max_tokens=max_new_tokens, an int at "
                         f"least as long as the longest response ({longest} tokens), got {max_tokens!r}.")
    return (torch.where(mask.bool(), per_token, 0.0).sum(1) / max_tokens).mean()  # NaN in padding cannot leak


def _token_advantages(advantages, logprobs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Validate ``advantages`` ((B,) or (B, T)) and return a detached ``(B, T)`` copy, 0 on padding."""
    check_float("advantages", advantages, ranks=(1, 2), layout="(B,) or (B, T)")
    if advantages.dim() == 1:
        if advantages.shape[0] != logprobs.shape[0]:
            raise ValueError(
                f"advantages of shape {tuple(advantages.shape)} must have one entry per sequence of logprobs "
                f"{tuple(logprobs.shape)}; pass (B,) per-sequence or (B, T) per-token advantages."
            )
        advantages = advantages[:, None].expand_as(logprobs)  # (B, T)
    else:
        check_like("advantages", advantages, "logprobs", logprobs)
    advantages = torch.where(keep, advantages.detach(), 0.0)  # (B, T)
    if not bool(torch.isfinite(advantages).all()):  # padding was zeroed: only response tokens can fail here
        raise ValueError("advantages hold NaN or inf on response tokens; check the rewards and any division "
                         "that made them (a group std of 0 needs an eps, a return of inf a finite reward).")
    return advantages


def reinforce_loss(logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                   aggregation: str = "token_mean", max_tokens: int | None = None) -> torch.Tensor:
    """REINFORCE policy-gradient loss (Williams 1992).

    ``L = −Σ_{b,t} A_{b,t} log π(a_t|s_t) m_{b,t} / Σ_{b,t} m_{b,t}`` (token-level mean,
    see the module docstring), whose gradient is the policy-gradient estimate
    ``−E[A ∇ log π(a|s)]``. ``A`` is a constant: a return, or a return minus a baseline
    (:func:`rlcourse.rl.advantages.batch_baseline_advantages`, ``group_advantages``,
    ``leave_one_out_advantages``).

    Args:
        logprobs: ``(B, T)`` log π(a_t|s_t) of the sampled tokens under the current policy.
        advantages: ``(B,)`` one per sequence (broadcast to all its tokens) or ``(B, T)``.
        mask: ``(B, T)``, 1 on response tokens.
        aggregation: how tokens are averaged (:func:`aggregate_loss`), default token-level.
        max_tokens: the generation budget, which ``aggregation="constant"`` divides by.

    Returns:
        The 0-dim loss.

    Example:
        >>> logprobs = torch.tensor([[-1., -2.], [-0.5, -9.]])
        >>> mask = torch.tensor([[1, 1], [1, 0]])
        >>> reinforce_loss(logprobs, torch.tensor([1., -2.]), mask)  # (1·1 + 1·2 − 2·0.5) / 3
        tensor(0.6667)
    """
    check_float("logprobs", logprobs, ranks=(2,), layout="(B, T)")
    check_mask(mask, logprobs, "logprobs")
    keep = mask.bool()
    advantages = _token_advantages(advantages, logprobs, keep)  # (B, T)
    per_token = -advantages * torch.where(keep, logprobs, 0.0)  # (B, T)
    return aggregate_loss(per_token, mask, aggregation, max_tokens)


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    clip_eps_high: float | None = None,
    aggregation: str = "token_mean",
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate objective (Schulman et al. 2017, "Proximal Policy
    Optimization Algorithms"), as a loss to minimise.

    ``ρ_t = exp(log π(a_t|s_t) − log π_old(a_t|s_t))`` and per token
    ``ℓ_t = max(−A_t ρ_t, −A_t clip(ρ_t, 1−ε, 1+ε))``, reduced with the token-level
    mean (module docstring). The max is the pessimistic choice: once ``ρ`` has moved
    past ``1+ε`` (for ``A > 0``) or below ``1−ε`` (for ``A < 0``) the clipped constant
    wins and that token's gradient is exactly 0, so one batch cannot push the policy
    far from the one that sampled it. Moves that make the objective worse are never
    clipped.

    Args:
        logprobs: ``(B, T)`` log π(a_t|s_t) under the current policy (with gradient).
        old_logprobs: ``(B, T)`` log-probs under the sampling policy (constant).
        advantages: ``(B,)`` one per sequence or ``(B, T)`` per token (constant).
        mask: ``(B, T)``, 1 on response tokens.
        clip_eps: ``ε`` > 0, typically 0.2.
        clip_eps_high: the upper bound's ``ε_high`` when it differs from ``ε`` ("clip-higher",
            DAPO, Yu et al. 2025: ``clip(ρ, 1−ε, 1+ε_high)`` with ``ε_high`` > ``ε`` lets unlikely
            tokens with positive advantage grow further, against entropy collapse); ``None``: ``ε``.
        aggregation: how tokens are averaged (:func:`aggregate_loss`); the statistics are
            always token means.
        max_tokens: the generation budget, which ``aggregation="constant"`` divides by.

    Returns:
        ``(loss, stats)``: the 0-dim loss and detached 0-dim statistics (token means):
        ``"clipfrac"``, the fraction of tokens where the clipped term is taken
        (``−A·clip(ρ) > −A·ρ``); ``"approx_kl"``, ``(ρ − 1) − log ρ`` (the k3 estimator
        of KL(π_old‖π), as in CleanRL); ``"ratio_mean"``, the mean of ``ρ``; ``"ratio_var"``, its
        variance over response tokens (TRL's ``val/ratio_var``).

    Example:
        >>> old_logprobs = torch.zeros(1, 2)
        >>> logprobs = torch.log(torch.tensor([[1.5, 0.9]]))  # ρ = [1.5, 0.9]
        >>> loss, stats = ppo_clip_loss(logprobs, old_logprobs, torch.tensor([1.]), torch.ones(1, 2), 0.2)
        >>> loss  # (max(−1.5, −1.2) + max(−0.9, −0.9)) / 2
        tensor(-1.0500)
        >>> stats["clipfrac"]
        tensor(0.5000)
    """
    check_float("logprobs", logprobs, ranks=(2,), layout="(B, T)")
    check_like("old_logprobs", old_logprobs, "logprobs", logprobs)
    check_mask(mask, logprobs, "logprobs")
    check_number("clip_eps", clip_eps, 0.0, low_open=True)
    clip_eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    check_number("clip_eps_high", clip_eps_high, 0.0, low_open=True)
    keep = mask.bool()
    advantages = _token_advantages(advantages, logprobs, keep)  # (B, T)
    log_ratio = torch.where(keep, logprobs - old_logprobs.detach(), 0.0)  # (B, T); 0 on padding: exp cannot overflow
    ratio = torch.exp(log_ratio)  # (B, T)
    unclipped = -advantages * ratio  # (B, T)
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps_high)  # (B, T)
    loss = aggregate_loss(torch.maximum(unclipped, clipped), mask, aggregation, max_tokens)
    with torch.no_grad():
        stats = {
            "clipfrac": masked_mean((clipped > unclipped).to(ratio.dtype), mask),
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask),
            "ratio_mean": masked_mean(ratio, mask),
            "ratio_var": masked_var(ratio, mask, unbiased=False),
        }
    return loss, stats


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Squared-error critic loss of PPO, optionally clipped (Schulman et al. 2017; the
    clipped form comes from the OpenAI baselines PPO2 code that TRL follows).

    Unclipped: ``L = ½ · mean_t (V_t − R_t)²``. With ``clip_eps = ε``:
    ``V^clip_t = V^old_t + clip(V_t − V^old_t, −ε, ε)`` and
    ``L = ½ · mean_t max((V_t − R_t)², (V^clip_t − R_t)²)``: like the policy clip, the
    pessimistic max removes the gradient of tokens whose value moved more than ``ε``
    away from the old one in the direction that helps. Token-level mean over the batch.

    Args:
        values: ``(B, T)`` critic outputs ``V_t`` (with gradient).
        old_values: ``(B, T)`` values at sampling time (constant).
        returns: ``(B, T)`` targets ``R_t``, e.g. from :func:`rlcourse.rl.advantages.gae` (constant).
        mask: ``(B, T)``, 1 on response tokens.
        clip_eps: ``ε`` > 0, or ``None`` for the plain squared error.

    Returns:
        ``(loss, stats)`` with ``stats["clipfrac"]``: the fraction of tokens where the
        clipped term is the larger one (0 without clipping), detached.

    Example:
        >>> values, old_values = torch.tensor([[1., 2.]]), torch.zeros(1, 2)
        >>> returns, mask = torch.tensor([[1.5, 2.]]), torch.ones(1, 2)
        >>> value_loss(values, old_values, returns, mask)[0]  # ½ · (0.25 + 0) / 2
        tensor(0.0625)
        >>> value_loss(values, old_values, returns, mask, clip_eps=0.5)[0]  # V_clip = [0.5, 0.5]: ½ · (1 + 2.25) / 2
        tensor(0.8125)
    """
    check_float("values", values, ranks=(2,), layout="(B, T)")
    check_like("old_values", old_values, "values", values)
    check_like("returns", returns, "values", values)
    check_mask(mask, values, "values")
    if clip_eps is not None:
        check_number("clip_eps", clip_eps, 0.0, low_open=True)
    keep = mask.bool()
    values = torch.where(keep, values, 0.0)  # (B, T)
    old_values = torch.where(keep, old_values.detach(), 0.0)  # (B, T)
    returns = torch.where(keep, returns.detach(), 0.0)  # (B, T)
    losses = (values - returns) ** 2  # (B, T)
    if clip_eps is None:
        return 0.5 * masked_mean(losses, mask), {"clipfrac": values.new_zeros(()).detach()}
    values_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)  # (B, T)
    losses_clipped = (values_clipped - returns) ** 2  # (B, T)
    loss = 0.5 * masked_mean(torch.maximum(losses, losses_clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((losses_clipped > losses).to(values.dtype), mask)
    return loss, {"clipfrac": clipfrac}


# ---------------------------------------------------------------------------
# KL(π‖π_ref) per token, estimated from tokens a ~ π (Schulman 2020, "Approximating
# KL Divergence", http://joschu.net/blog/kl-approx.html). With r = π_ref(a)/π(a):
#     KL(π‖π_ref) = E_{a~π}[log π(a) − log π_ref(a)] = E_{a~π}[−log r].
# ---------------------------------------------------------------------------


def _kl_log_ratio(logprobs, ref_logprobs) -> torch.Tensor:
    """Validate the pair and return ``log r = log π_ref − log π`` with the input's shape."""
    check_float("logprobs", logprobs)
    check_like("ref_logprobs", ref_logprobs, "logprobs", logprobs)
    return ref_logprobs - logprobs


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 estimator of KL(π‖π_ref): ``k1 = log π(a) − log π_ref(a) = −log r``.

    Unbiased (its mean under ``a ~ π`` is exactly the KL) but high-variance, and
    negative on every sampled token that ``π_ref`` likes more than ``π`` does: only its
    expectation is guaranteed ≥ 0, so a per-token k1 penalty can reward some tokens.
    TRL's PPO puts ``−β·k1`` into the per-token reward. Schulman (2020).

    Args:
        logprobs: ``(B, T)`` log π(a_t|s_t) of the sampled tokens.
        ref_logprobs: ``(B, T)`` log π_ref(a_t|s_t) of the same tokens.

    Returns:
        ``(B, T)`` per-token estimates, unmasked (callers mask).

    Example:
        >>> import math
        >>> logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]])
        >>> ref_logprobs = torch.tensor([[math.log(0.25), math.log(0.5)]])
        >>> kl_k1(logprobs, ref_logprobs)  # [log 2, −log 2]
        tensor([[ 0.6931, -0.6931]])
    """
    return -_kl_log_ratio(logprobs, ref_logprobs)  # (B, T)


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k2 estimator of KL(π‖π_ref): ``k2 = ½ (log π(a) − log π_ref(a))² = ½ (log r)²``.

    Always ≥ 0 and low-variance, but biased: its mean is an f-divergence that matches
    the KL only to second order, i.e. when π and π_ref are close. Schulman (2020).

    Args:
        logprobs: ``(B, T)`` log π(a_t|s_t) of the sampled tokens.
        ref_logprobs: ``(B, T)`` log π_ref(a_t|s_t) of the same tokens.

    Returns:
        ``(B, T)`` per-token estimates, unmasked (callers mask).

    Example:
        >>> import math
        >>> logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]])
        >>> ref_logprobs = torch.tensor([[math.log(0.25), math.log(0.5)]])
        >>> kl_k2(logprobs, ref_logprobs)  # ½ (log 2)² twice
        tensor([[0.2402, 0.2402]])
    """
    return 0.5 * _kl_log_ratio(logprobs, ref_logprobs) ** 2  # (B, T)


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(π‖π_ref):
    ``k3 = exp(log π_ref − log π) − (log π_ref − log π) − 1 = (r − 1) − log r``.

    Unbiased: ``E_{a~π}[r] = Σ_a π_ref(a) = 1``, so ``E[k3] = E[−log r] = KL``; the added
    ``r − 1`` has mean 0 and is a control variate that lowers the variance. Never
    negative, unlike k1: ``log r ≤ r − 1`` for every ``r > 0`` (the log lies below its
    tangent at 1), so each sample is ≥ 0, with equality only where π = π_ref. This is
    the KL term of GRPO (Shao et al. 2024) and TRL's GRPOTrainer. Schulman (2020).
    Computed as ``expm1(log r) − log r`` for accuracy near r = 1.

    Used *as a loss* on samples of π (their weighting not differentiated), its expected gradient
    is ``E_π[(1 − π_ref/π) ∇log π] = −Σ_a π_ref(a) ∇log π(a) = ∇ KL(π_ref‖π)``: the reverse
    direction of the KL it estimates (notebook 04 measures both).

    Args:
        logprobs: ``(B, T)`` log π(a_t|s_t) of the sampled tokens.
        ref_logprobs: ``(B, T)`` log π_ref(a_t|s_t) of the same tokens.

    Returns:
        ``(B, T)`` per-token estimates ≥ 0, unmasked (callers mask).

    Example:
        >>> import math
        >>> logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]])
        >>> ref_logprobs = torch.tensor([[math.log(0.25), math.log(0.5)]])
        >>> kl_k3(logprobs, ref_logprobs)  # [0.5 − 1 + log 2, 2 − 1 − log 2]
        tensor([[0.1931, 0.3069]])
    """
    log_ratio = _kl_log_ratio(logprobs, ref_logprobs)  # (B, T) log r
    # expm1(x) − x ≥ 0 exactly; the clamp only removes float rounding noise at r ≈ 1.
    return (torch.expm1(log_ratio) - log_ratio).clamp(min=0.0)  # (B, T)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Direct Preference Optimization loss (Rafailov et al. 2023, "Direct Preference
    Optimization: Your Language Model is Secretly a Reward Model").

    Implicit reward ``r̂(x, y) = β (log π(y|x) − log π_ref(y|x))``, and
    ``L = −mean_b log σ(r̂(x, y_c) − r̂(x, y_r))``: the Bradley–Terry likelihood that the
    chosen response beats the rejected one. Computed with ``F.logsigmoid``, which is
    stable for margins of any size. The log-probs are summed over each response's
    tokens; the mean is over preference pairs. The reference log-probs are constants.

    Args:
        policy_chosen_logps: ``(B,)`` log π(y_c|x), summed over the chosen response.
        policy_rejected_logps: ``(B,)`` log π(y_r|x).
        ref_chosen_logps: ``(B,)`` log π_ref(y_c|x).
        ref_rejected_logps: ``(B,)`` log π_ref(y_r|x).
        beta: ``β`` > 0, strength of the implicit KL constraint (typically 0.1).

    Returns:
        ``(loss, stats)``; stats (TRL's names, detached batch means):
        ``"rewards/chosen"`` ``r̂(x, y_c)``, ``"rewards/rejected"`` ``r̂(x, y_r)``,
        ``"rewards/margins"`` their difference, ``"rewards/accuracies"`` the fraction
        of pairs with ``r̂(x, y_c) > r̂(x, y_r)``.

    Example:
        >>> loss, stats = dpo_loss(torch.tensor([-1.]), torch.tensor([-3.]),
        ...                        torch.tensor([-2.]), torch.tensor([-2.]), beta=0.1)
        >>> loss  # −log σ(0.1·1 − 0.1·(−1)) = log(1 + e^{−0.2})
        tensor(0.5981)
        >>> stats["rewards/margins"]
        tensor(0.2000)
    """
    check_float("policy_chosen_logps", policy_chosen_logps, ranks=(1,), layout="(B,)")
    check_like("policy_rejected_logps", policy_rejected_logps, "policy_chosen_logps", policy_chosen_logps)
    check_like("ref_chosen_logps", ref_chosen_logps, "policy_chosen_logps", policy_chosen_logps)
    check_like("ref_rejected_logps", ref_rejected_logps, "policy_chosen_logps", policy_chosen_logps)
    check_number("beta", beta, 0.0, low_open=True)
    if policy_chosen_logps.shape[0] == 0:
        raise ValueError("dpo_loss got an empty batch (B = 0); pass at least one preference pair.")
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps.detach())  # (B,)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps.detach())  # (B,)
    margins = chosen_rewards - rejected_rewards  # (B,)
    loss = -F.logsigmoid(margins).mean()
    with torch.no_grad():
        stats = {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/margins": margins.mean(),
            "rewards/accuracies": (chosen_rewards > rejected_rewards).to(margins.dtype).mean(),
        }
    return loss, stats


def sft_loss(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Supervised fine-tuning loss: next-token cross-entropy on the tokens ``loss_mask`` marks.

    For demonstrations ``x = (prompt, response)`` (Ouyang et al. 2022, §3.5, InstructGPT's SFT;
    TRL's SFTTrainer with ``completion_only_loss``):

        L_SFT = −Σ_{b,t} m_{b,t} log π_θ(x_{b,t} | x_{b,<t}) / Σ_{b,t} m_{b,t}

    with ``m = 1`` on the response tokens and the EOS that ends them (the prompt is *given*, not
    imitated: the policy is not taught to write prompts). ``m = 1`` on every real token but the
    first gives the plain language-model loss on whole texts (pretraining's). One mean over all
    marked tokens of the batch, as Hugging Face's ``labels=-100`` convention computes it.

    Unlike the rest of this module, tensors here are *whole sequences* ``(B, L)``, not
    response-aligned: the logits at position t−1 predict the token at t, so ``loss_mask[:, 0]``
    (no logit predicts it) must be 0.

    Args:
        logits: ``(B, L, V)`` the model's outputs on ``input_ids``.
        input_ids: ``(B, L)`` prompt and response ids as one sequence (any padding).
        loss_mask: ``(B, L)`` 1 on the tokens to imitate; every row needs at least one.

    Example:
        >>> logits = torch.log(torch.tensor([[[0.5, 0.5], [0.25, 0.75], [0.5, 0.5]]]))
        >>> ids, mask = torch.tensor([[0, 1, 0]]), torch.tensor([[0, 0, 1]])
        >>> sft_loss(logits, ids, mask)  # only token 2 (id 0) is imitated: −log 0.25
        tensor(1.3863)
    """
    check_float("logits", logits, ranks=(3,), layout="(B, L, V)")
    if tuple(input_ids.shape) != tuple(logits.shape[:2]) or input_ids.is_floating_point():
        raise ValueError(f"input_ids must be integer ids of shape (B, L) = {tuple(logits.shape[:2])} to match the "
                         f"logits, got {input_ids.dtype} of shape {tuple(input_ids.shape)}.")
    check_mask(loss_mask, input_ids, "input_ids")
    if bool(loss_mask[:, 0].bool().any()):
        raise ValueError("loss_mask marks position 0, which no logit predicts: set loss_mask[:, 0] = 0 "
                         "(the first token is given, as <bos> is).")
    empty = (loss_mask.sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"row {empty[0]} of loss_mask marks no token, so the prompt mask covers the whole row and "
                         "there is nothing to imitate: give every demonstration a non-empty response.")
    logprobs = F.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, L-1, V): position t-1 predicts token t
    logprobs = logprobs.gather(-1, input_ids[:, 1:].long().unsqueeze(-1)).squeeze(-1)  # (B, L-1)
    return aggregate_loss(-logprobs, loss_mask[:, 1:], "token_mean")
