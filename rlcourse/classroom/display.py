"""Printing in notebooks: floats that no CPU can change, and the package's own source.

Notebooks import the package and show its code with :func:`show_source`; they never paste it.
"""

from __future__ import annotations

import torch

def rounded(x: torch.Tensor, decimals: int = 2) -> torch.Tensor:
    """``x`` rounded for printing, with no ``-0.00``: a last-bit difference between CPUs must
    not change a stored output (``round(-1e-9) + 0.0`` is ``+0.0``).

    Example:
        >>> rounded(torch.tensor([-1e-9, 0.126, -0.004]))
        tensor([0.0000, 0.1300, 0.0000])
    """
    return torch.round(x, decimals=decimals) + 0.0


def show_source(obj) -> None:
    """Print the source of a package function or class (notebooks show code, never paste it)."""
    import inspect

    print(inspect.getsource(obj))
