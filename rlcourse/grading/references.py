"""Reference answers the package does not already hold as one function.

Most homework exercises are graded against the package's own functions (``policy.py``,
``rewards.py``, ``advantages.py``, ``losses.py``); the few pieces below are the course's
small helpers that have no other home. They are the answers, so answer cells may not
call them (see :mod:`rlcourse.grading.static`).
"""

from __future__ import annotations

import torch

from rlcourse.masked import check_float, check_mask, check_number


def sampling_distribution(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """The distribution a sampler draws the next token from: softmax of tempered, top-k-filtered logits.

    ``p(a) ∝ exp(z_a / τ)`` for the ``k`` largest logits ``z_a`` (all of them when ``k = 0``),
    0 for the others.

    Args:
        logits: ``(B, V)`` float scores of the next token.
        temperature: ``τ > 0``; below 1 sharpens, above 1 flattens.
        top_k: keep the ``k`` most likely tokens; 0 keeps all.

    Returns:
        ``(B, V)`` probabilities, each row summing to 1.

    Example:
        >>> sampling_distribution(torch.log(torch.tensor([[0.5, 0.3, 0.2]])), 1.0, 2)
        tensor([[0.6250, 0.3750, 0.0000]])
    """
    check_float("logits", logits, ranks=(2,), layout="(B, V)")
    check_number("temperature", temperature, 0.0, low_open=True)
    scaled = logits.double() / temperature  # (B, V)
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (B, 1) the k-th largest
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))  # (B, V)
    return torch.softmax(scaled, dim=-1)  # (B, V)


def kl_penalized_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> torch.Tensor:
    """Per-token rewards of RLHF with PPO: ``r_t = −β (log π − log π_ref)_t``, plus the score on the last token.

    This is what :func:`rlcourse.loops.score` builds (Ziegler et al. 2019; TRL's PPO): the
    KL penalty (k1) on every response token, and the reward model's score of the whole
    response added at its last token. Padding gets 0.

    Args:
        scores: ``(B,)`` one score per response.
        logprobs, ref_logprobs: ``(B, T)`` log-probs of the sampled tokens under π and π_ref.
        mask: ``(B, T)``, 1 on response tokens (a prefix of each row, at least one token).
        kl_coef: ``β ≥ 0``.

    Example:
        >>> kl_penalized_rewards(torch.tensor([1.0]), torch.tensor([[-1.0, -1.0, 0.0]]),
        ...                      torch.tensor([[-2.0, -1.0, 0.0]]), torch.tensor([[1, 1, 0]]), 0.5)
        tensor([[-0.5000,  1.0000,  0.0000]])
    """
    check_float("logprobs", logprobs, ranks=(2,), layout="(B, T)")
    check_mask(mask, logprobs, "logprobs", prefix=True)
    check_number("kl_coef", kl_coef, 0.0)
    mask = mask.to(logprobs.dtype)  # (B, T)
    kl = (logprobs - ref_logprobs) * mask  # (B, T) k1 per token
    last = (mask.sum(1).long() - 1).clamp(min=0)  # (B,) index of the last response token
    task = torch.zeros_like(mask).scatter(1, last[:, None], scores.to(mask.dtype)[:, None])  # (B, T)
    return task - kl_coef * kl  # (B, T)


def count_weights_and_biases(model: torch.nn.Module) -> tuple[int, int]:
    """``(weights, biases)``: how many trainable numbers of θ are weights and how many biases."""
    from rlcourse.models import count_parameters

    counts = count_parameters(model)
    return counts["weights"], counts["biases"]
