"""Plots: each reward on its own axis, and the smoothing named where curves are smoothed."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from rlcourse.classroom import plotting  # noqa: E402

HISTORY = [{"objective/kl": 0.5 * i, "objective/scores": 0.1 * i, "gold/reward": 0.02 * i - 0.1} for i in range(20)]


def test_reward_vs_kl_gives_the_proxy_and_the_gold_reward_their_own_axes():
    ax = plotting.reward_vs_kl({"run": HISTORY}, window=5)
    axes = ax.figure.axes
    assert len(axes) == 2  # the learned reward model and the gold reward are on different scales
    assert [a.get_ylabel() for a in axes] == [plotting.METRIC_LABELS["objective/scores"], plotting.METRIC_LABELS["gold/reward"]]
    assert "5-step moving average" in ax.get_xlabel()
    assert len(ax.get_legend().get_texts()) == 2  # one legend names both lines
    plt.close(ax.figure)


def test_reward_vs_kl_on_the_square_root_of_the_kl():
    """Gao et al. (2023) plot rewards against d = √KL: the x data is the square root of the smoothed KL."""
    history = HISTORY + [{"objective/kl": -0.3, "objective/scores": 0.0, "gold/reward": 0.0}]  # a negative estimate
    ax = plotting.reward_vs_kl({"run": history}, metrics=("gold/reward",), window=1, sqrt_kl=True)
    x = ax.get_lines()[0].get_xdata()
    assert list(x) == [math.sqrt(0.5 * i) for i in range(20)] + [0.0]
    assert ax.get_xlabel().startswith("√KL")
    plt.close(ax.figure)


def test_learning_curves_name_the_smoothing_and_count_seeds():
    ax = plotting.learning_curves({"A": [HISTORY]}, "gold/reward", window=5)
    assert "5-step moving average" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A (1 seed)"]
    plt.close(ax.figure)
    ax = plotting.learning_curves({"A": [HISTORY, HISTORY]}, "gold/reward", window=1)
    assert "moving average" not in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A (2 seeds)"]
    plt.close(ax.figure)


def test_smooth_is_a_trailing_mean_over_what_exists():
    """Point t averages the last `window` values up to t (fewer at the start: no padding), skipping NaNs."""
    import numpy as np

    from rlcourse.classroom.plotting import smooth

    x = np.random.default_rng(0).normal(size=(3, 17))
    x[1, 4] = np.nan
    assert smooth(x, 1) is x
    for window in (3, 5, 30):
        naive = np.array([[np.nanmean(row[max(0, t - window + 1): t + 1]) for t in range(17)] for row in x])
        np.testing.assert_allclose(smooth(x, window), naive, rtol=1e-12, atol=1e-12)
