"""Reference answers the package does not already hold as one function.

Most homework exercises are graded against the package's own functions (``policy.py``,
``reward_model.py``, ``advantages.py``, ``losses.py``, ``loops.py``); the few pieces below are the course's
small helpers that have no other home. They are the answers, so answer cells may not
call them (see :mod:`rlcourse.grading.static`).
"""

from __future__ import annotations

import torch

from rlcourse.rl.masked import check_float, check_number


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


def count_weights_and_biases(model: torch.nn.Module) -> tuple[int, int]:
    """``(weights, biases)``: how many trainable numbers of θ are weights and how many biases."""
    from rlcourse.model.loading import count_parameters

    counts = count_parameters(model)
    return counts["weights"], counts["biases"]


def is_correct(prompt: str, response: str) -> bool:
    """The verifier of the arithmetic world, on texts: does ``response`` end with the value of the problem ``prompt``?

    :func:`rlcourse.world.arith.is_correct` of ``Problem.from_text(prompt)`` (the outcome reward: the
    final ``answer n`` only, steps not looked at).

    Example:
        >>> is_correct("4 + 3 - 2 =", "answer 5"), is_correct("4 + 3 - 2 =", "4 + 3 = 7 ; 7 - 2 = 5 ; answer 5 ;")
        (True, False)
    """
    from rlcourse.world import arith

    return arith.is_correct(arith.Problem.from_text(prompt), response)
