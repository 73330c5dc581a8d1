"""Reference answers the package does not already hold as one function.

Most homework exercises are graded against the package's own functions (``policy.py``,
``reward_model.py``, ``advantages.py``, ``losses.py``, ``loops.py``); the few pieces below are the course's
small helpers that have no other home (hw6's two masks are the ones :func:`rlcourse.rl.sft.encode_demonstrations`
builds while it tokenizes; ``tests/test_homework.py`` checks that they agree). They are the answers, so answer cells may not
call them (see :mod:`rlcourse.grading.static`).
"""

from __future__ import annotations

import torch

from rlcourse.rl.masked import check_float, check_mask, check_number


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


def _check_left_padded(attention_mask: torch.Tensor) -> None:
    """A ``(B, L)`` 0/1 mask whose zeros all come first in each row (left padding), at least one 1 per row."""
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
        raise ValueError("attention_mask must be a (B, L) tensor of 0 and 1, as a left-padding tokenizer returns it.")
    check_mask(attention_mask, attention_mask, "attention_mask")
    if bool((attention_mask[:, 1:] < attention_mask[:, :-1]).any()) or bool((attention_mask.sum(1) == 0).any()):
        raise ValueError("attention_mask must be left-padded (0s, then 1s) with at least one real token per row; "
                         "tokenize with padding_side='left'.")


def response_loss_mask(attention_mask: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
    """SFT's loss mask: 1 on each row's response tokens and the EOS that ends them, 0 on padding and prompt.

    Rows are left-padded ``<pad>… <bos> prompt response <eos>``; row b's real tokens start at
    ``p_b = L − Σ_t a_{b,t}`` and its prompt (``<bos>`` included) holds ``n_b`` of them, so

        m_{b,t} = 1  if  t ≥ p_b + n_b,  else 0.

    The mask :func:`rlcourse.rl.sft.encode_demonstrations` returns with ``response_only=True``.

    Args:
        attention_mask: ``(B, L)`` 0/1, left-padded (1 on real tokens).
        prompt_lengths: ``(B,)`` integer tokens of each row's prompt, ``<bos>`` included; fewer than its real tokens.

    Returns:
        ``(B, L)`` long 0/1 mask.

    Example (``<pad> <bos> the film was good . <eos>``, a prompt of 4 tokens):
        >>> response_loss_mask(torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1]]), torch.tensor([4]))
        tensor([[0, 0, 0, 0, 0, 1, 1, 1]])
    """
    _check_left_padded(attention_mask)
    lengths = attention_mask.sum(1)  # (B,) real tokens per row
    if tuple(prompt_lengths.shape) != lengths.shape or prompt_lengths.is_floating_point() \
            or bool(((prompt_lengths < 1) | (prompt_lengths >= lengths)).any()):
        raise ValueError("prompt_lengths must be (B,) integers, each at least 1 (<bos>) and below its row's real "
                         "tokens (a response needs at least one token).")
    L = attention_mask.shape[1]
    start = L - lengths + prompt_lengths  # (B,) the first response token of each row
    return (torch.arange(L)[None, :] >= start[:, None]).long()  # (B, L)


def all_token_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """The plain language-model loss mask: every real token but each row's first (``<bos>``, which no logit predicts).

    ``m_{b,t} = a_{b,t}`` except ``m_{b,p_b} = 0`` at row b's first real token ``p_b``. The mask
    :func:`rlcourse.rl.sft.encode_demonstrations` returns with ``response_only=False``.

    Args:
        attention_mask: ``(B, L)`` 0/1, left-padded.

    Returns:
        ``(B, L)`` long 0/1 mask.

    Example:
        >>> all_token_mask(torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
        tensor([[0, 0, 1, 1],
                [0, 1, 1, 1]])
    """
    _check_left_padded(attention_mask)
    return (attention_mask.long().cumsum(1) > 1).long()  # (B, L) the 2nd real token onwards
