"""Plots the notebooks share: learning curves with seed bands, reward against KL.

Every function takes histories as returned by :func:`rlcourse.rl.loops.train` (a list of metric
dicts, one per step) and draws on a matplotlib ``Axes`` it returns.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

METRIC_LABELS = {
    "gold/reward": "gold reward (mean per response)",
    "objective/scores": "reward being optimised",
    "objective/kl": "KL(π‖π_ref) per response (nats)",
    "policy/entropy_avg": "entropy per token (nats)",
    "gold/grammatical": "grammatical responses (fraction)",
    "response/length": "response length (tokens)",
}


def metric_matrix(histories: list[list[dict]], metric: str) -> np.ndarray:
    """``(num_seeds, num_steps)`` array of one metric (runs cut to the shortest)."""
    if not histories or any(len(h) == 0 for h in histories):
        raise ValueError("histories must be a non-empty list of non-empty runs (lists of metric dicts).")
    steps = min(len(h) for h in histories)
    try:
        return np.array([[m[metric] for m in h[:steps]] for h in histories], dtype=float)
    except KeyError:
        raise ValueError(f"metric '{metric}' is not in the history; available: {sorted(histories[0][0])}.") from None


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average along the last axis: point t is the mean of the last ``window`` values
    up to t, of fewer at the start (no padding, so a noisy first step does not drag the first
    ``window`` points), skipping NaNs (a metric that is undefined at some steps). Window 1 = no smoothing.

    Example:
        >>> smooth(np.array([0.0, 2.0, 4.0, np.nan, 8.0]), 2)
        array([0., 1., 3., 4., 8.])
    """
    if window <= 1:
        return x
    x = np.asarray(x, dtype=float)
    present = ~np.isnan(x)
    sums = np.cumsum(np.where(present, x, 0.0), axis=-1)
    counts = np.cumsum(present, axis=-1)
    shift = lambda a: np.concatenate([np.zeros_like(a[..., :window]), a[..., :-window]], axis=-1)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums - shift(sums)) / (counts - shift(counts))


def learning_curves(runs: dict[str, list[list[dict]]], metric: str = "gold/reward", ax=None, window: int = 5,
                    title: str | None = None):
    """Mean over seeds with a band from the lowest to the highest seed, one line per label.

    Args:
        runs: ``{"PPO": [history_seed0, history_seed1, ...], ...}``.
        metric: a key of the metric dicts.
        window: moving-average window (steps) applied to each seed before averaging.
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for label, histories in runs.items():
        values = smooth(metric_matrix(histories, metric), window)  # (S, steps)
        steps = np.arange(values.shape[1])
        line, = ax.plot(steps, values.mean(0), label=f"{label} ({len(histories)} seed{'s' if len(histories) > 1 else ''})")
        if len(histories) > 1:
            ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("RL step" + (f" (each curve a {window}-step moving average)" if window > 1 else ""))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} during training")
    ax.legend(fontsize=8)
    return ax


def reward_vs_kl(runs: dict[str, list[dict]], metrics=("objective/scores", "gold/reward"), ax=None, window: int = 5,
                 title: str = "Reward as the policy moves away from the reference", sqrt_kl: bool = False):
    """Rewards against KL to the reference, one line per run and metric (over-optimisation shows here).

    Each metric gets its own y-axis (the first on the left, the next on the right), since a learned
    reward model and the gold reward are on different scales. With ``sqrt_kl`` the x-axis is
    ``d = √KL`` (negative KL estimates clipped to 0), as Gao et al. (2023) plot their scaling laws.
    Returns the left axis.
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    axes = [ax] + [ax.twinx() for _ in metrics[1:]]
    styles = ["-", "--", ":"]
    lines = []
    for label, history in runs.items():
        kl = smooth(metric_matrix([history], "objective/kl"), window)[0]
        kl = np.sqrt(np.clip(kl, 0.0, None)) if sqrt_kl else kl
        for metric, style, axis in zip(metrics, styles, axes):
            y = smooth(metric_matrix([history], metric), window)[0]
            lines += axis.plot(kl, y, style, color=f"C{len(lines)}", label=f"{label}: {METRIC_LABELS.get(metric, metric)}")
    kl_label = "√KL, d = √(KL per response) (nats^½)" if sqrt_kl else METRIC_LABELS["objective/kl"]
    ax.set_xlabel(kl_label + (f" ({window}-step moving averages)" if window > 1 else ""))
    for metric, axis in zip(metrics, axes):
        axis.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title)
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7)
    return ax


def token_heatmap(values, mask=None, tokens: list[list[str]] | None = None, ax=None, title: str = "per-token values",
                  label: str = "value", center: bool = True):
    """One row per sequence, one cell per response token, coloured by ``values`` (e.g. advantages).

    Args:
        values: ``(N, T)`` tensor or array (rewards, advantages, KL per token, …).
        mask: ``(N, T)``, 1 on response tokens; cells where it is 0 are left blank.
        tokens: optional ``N`` lists of token strings, written into the cells (keep N·T small).
        center: a diverging colour map centred on 0 (for signed values); else a sequential one.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D (N, T) array of per-token numbers, got shape {values.shape}.")
    if mask is not None:
        mask = np.asarray(mask, dtype=float)
        if mask.shape != values.shape:
            raise ValueError(f"mask must have the shape of values {values.shape}, got {mask.shape}.")
        values = np.where(mask > 0, values, np.nan)
    ax = ax or plt.subplots(figsize=(8, 0.35 * values.shape[0] + 1.2))[1]
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    kwargs = {"cmap": "RdBu", "vmin": -limit, "vmax": limit} if center else {"cmap": "viridis"}
    image = ax.imshow(values, aspect="auto", interpolation="nearest", **kwargs)
    if tokens is not None:
        for n, row in enumerate(tokens):
            for t, token in enumerate(row[: values.shape[1]]):
                if np.isfinite(values[n, t]):
                    ax.text(t, n, token, ha="center", va="center", fontsize=6)
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("response position t (tokens)")
    ax.set_ylabel("sequence")
    ax.set_title(title)
    return ax
