"""Claims a notebook makes about its own results, checked where they are made.

Floats differ across CPUs (vector width, BLAS code paths) and training turns last-bit
differences into different trajectories: a trained run on a student's laptop does not end at
the digits printed on ours. So a notebook never asks nbval to compare a trained number digit
by digit. It states what the run robustly shows ("held-out accuracy within 5 points of the
noise ceiling") and checks that, with a tolerance, in the cell that computes it:

    >>> expect("accuracy is above chance", 0.80, low=0.5)
    ✓ accuracy is above chance
    >>> expect("dense beats sparse on every seed", True)
    ✓ dense beats sparse on every seed

The printed line never contains the value, so it is the same on every machine and nbval can
compare it; a failed claim raises :class:`ClaimError`, naming the value and the band, which
stops the notebook (and fails nbval) wherever it runs.

Choosing a band: run the notebook under perturbed numerics (``make test-portable``) and, where
cheap, with other seeds; with ``RLCOURSE_CLAIMS_LOG=FILE`` in the environment every claim
appends one JSON line (claim, value, low, high, ok) to FILE, and
``benchmarks/claim_margins.py`` runs the notebooks that way and prints each claim's values and
how much room its band leaves. A band so wide that a broken implementation passes is a defect.
"""

from __future__ import annotations

import json
import math
import os

LOG_ENV = "RLCOURSE_CLAIMS_LOG"  # set to a file path to record every claim as a JSON line


class ClaimError(AssertionError):
    """A notebook's claim about its results does not hold on this run."""


def expect(claim: str, value: float | bool, low: float | None = None, high: float | None = None) -> None:
    """Check ``low <= value <= high`` (or ``value is True`` when no bound is given) and print ``✓ claim``.

    Args:
        claim: what the prose says, as a sentence fragment ("held-out accuracy within 5 points
            of the noise ceiling"); printed as is, so keep numbers in it to the band's own.
        value: the computed number (a float, an int, a 0-dim tensor), or a bool for a
            yes/no claim.
        low, high: the inclusive band; either may be ``None`` (unbounded on that side).

    Raises:
        ClaimError: the claim fails (or ``value`` is NaN), with the value and the band.
        ValueError: a bool is given bounds, or a number none.
    """
    is_bool = isinstance(value, bool)
    if is_bool != (low is None and high is None):
        raise ValueError(f"expect({claim!r}): give a bool without bounds or a number with low and/or high.")
    if is_bool:
        ok, shown = value, str(value)
    else:
        value = float(value)
        ok = not math.isnan(value) and (low is None or value >= low) and (high is None or value <= high)
        shown = f"{value:.6g}"
    _log(claim, None if is_bool else value, low, high, bool(ok))
    if not ok:
        band = "true" if is_bool else f"in [{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ClaimError(f"claim failed: {claim}: got {shown}, expected {band}; "
                         "if the code is right, the prose and the band must change together.")
    print(f"✓ {claim}")


def _log(claim: str, value: float | None, low: float | None, high: float | None, ok: bool) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"claim": claim, "value": value, "low": low, "high": high, "ok": ok}) + "\n")
