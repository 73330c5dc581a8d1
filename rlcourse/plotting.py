"""Plots the notebooks share: learning curves with seed bands, reward against KL.

Every function takes histories as returned by :func:`rlcourse.loops.train` (a list of metric
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
    """Trailing moving average along the last axis (window 1 = no smoothing)."""
    if window <= 1:
        return x
    kernel = np.ones(window) / window
    padded = np.concatenate([np.repeat(x[..., :1], window - 1, axis=-1), x], axis=-1)
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), -1, padded)


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
        line, = ax.plot(steps, values.mean(0), label=f"{label} ({len(histories)} seeds)")
        if len(histories) > 1:
            ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("RL step")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} during training")
    ax.legend(fontsize=8)
    return ax


def reward_vs_kl(runs: dict[str, list[dict]], metrics=("objective/scores", "gold/reward"), ax=None, window: int = 5,
                 title: str = "Reward as the policy moves away from the reference"):
    """Reward(s) against KL to the reference, one line per run and metric (over-optimisation shows here)."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    styles = ["-", "--", ":"]
    for label, history in runs.items():
        kl = smooth(metric_matrix([history], "objective/kl"), window)[0]
        color = None
        for metric, style in zip(metrics, styles):
            y = smooth(metric_matrix([history], metric), window)[0]
            line, = ax.plot(kl, y, style, color=color, label=f"{label}: {METRIC_LABELS.get(metric, metric)}")
            color = line.get_color()
    ax.set_xlabel(METRIC_LABELS["objective/kl"])
    ax.set_ylabel("reward")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return ax
