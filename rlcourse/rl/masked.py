"""Masked statistics and input checks: the layer below advantages, losses and the loops.

Every per-token tensor is *response-aligned* ``(B, T)``: position ``t`` is the ``t``-th
generated token, and ``mask`` is 1 on response tokens and 0 on padding. Padding never changes a
result, whatever it holds: it is replaced by 0 with ``torch.where`` before any arithmetic (not
multiplied by 0, so an ``inf`` there cannot become ``nan``).

The ``check_*`` functions validate at the package's boundary and raise ``ValueError`` with one
sentence: what was wrong, what was expected, what to do. :mod:`rlcourse.rl.advantages`,
:mod:`rlcourse.rl.losses` and the grader's references use them.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

__all__ = ["masked_sum", "masked_mean", "masked_var", "check_float", "check_like", "check_mask", "check_number",
           "check_count", "check_group_size", "check_nonempty"]


# ---------------------------------------------------------------------------
# Input validation (shared with rlcourse.rl.losses). Each check raises ValueError
# with one sentence: what was wrong, what was expected, what to do.
# ---------------------------------------------------------------------------


def check_float(name: str, x, ranks: tuple[int, ...] | None = None, layout: str = "") -> None:
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


def check_like(name: str, x, ref_name: str, ref: torch.Tensor) -> None:
    """Require a floating-point tensor with exactly the shape and device of ``ref``."""
    check_float(name, x)
    if x.shape != ref.shape:
        raise ValueError(
            f"{name} must have the same shape as {ref_name}, got {tuple(x.shape)} and {tuple(ref.shape)}; "
            f"pass both response-aligned, one entry per token (or per sequence)."
        )
    if x.device != ref.device:
        raise ValueError(
            f"{name} is on {x.device} but {ref_name} is on {ref.device}; move both to the same device."
        )


def check_mask(mask, ref: torch.Tensor, ref_name: str, prefix: bool = False) -> None:
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


def check_number(name: str, value, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """Require a real number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{']' if math.isfinite(high) else ')'}"
        raise ValueError(
            f"{name} must be a finite number in {interval}, got {value!r}; pass a plain Python float in that range."
        )


def check_count(name: str, value) -> None:
    """Require a count a loop cannot do without (prompts, steps, tokens, batch size): an int ≥ 1, named when it is not."""
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be an int ≥ 1, got {value!r}.")


def check_group_size(group_size, n: int, minimum: int) -> None:
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


def check_nonempty(mask: torch.Tensor, minimum: int = 1) -> None:
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
    check_float("x", x)
    check_mask(mask, x, "x")
    kept = torch.where(mask.bool(), x, 0.0)  # same shape as x; dropped entries are exactly 0
    return kept.sum() if dim is None else kept.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean of ``x`` over entries where ``mask`` is 1: ``Σ_i x_i m_i / Σ_i m_i``.

    With ``dim=None`` this is the token-level mean over the whole batch that
    :mod:`rlcourse.rl.losses` uses to aggregate per-token losses. Reducing along ``dim``
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
    check_float("x", x)
    check_mask(mask, x, "x")
    if dim is None:
        check_nonempty(mask)
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
    check_float("x", x)
    check_mask(mask, x, "x")
    check_nonempty(mask, 2 if unbiased else 1)
    mean = masked_mean(x, mask)  # ()
    centered = torch.where(mask.bool(), x - mean, 0.0)  # same shape as x
    n = mask.to(x.dtype).sum()  # ()
    return (centered**2).sum() / (n - 1 if unbiased else n)
