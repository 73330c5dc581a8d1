"""Notebook 03's claim on fixed seeds: with the same algorithm, budget and discount, dense per-token
gold rewards reach the gold-reward threshold in fewer steps than one sparse score at the end."""

from dataclasses import replace

import pytest

from rlcourse import analysis, loops


@pytest.mark.slow
def test_dense_rewards_reach_the_threshold_before_the_sparse_score():
    # notebook 03's setting: RLOO on stories, 8 prompts × 4 samples, 48 tokens, γ = 0.9, seed 0
    base = loops.RLOOConfig(task="story", num_steps=30, num_prompts=8, group_size=4, max_new_tokens=48,
                            kl_coef=0.0, gamma=0.9, seed=0)
    sparse = loops.train(base, progress=False)["history"]
    dense = loops.train(replace(base, dense=True), progress=False)["history"]
    # both start from the same model, so the first steps score alike: the difference is learnt
    assert abs(sparse[0]["gold/reward"] - dense[0]["gold/reward"]) < 0.1
    steps_dense = analysis.steps_to_threshold(dense, 0.0)
    steps_sparse = analysis.steps_to_threshold(sparse, 0.0)
    assert steps_dense is not None, "dense rewards never reached a gold reward of 0 in 30 steps"
    assert steps_sparse is None or steps_dense < steps_sparse
    # and the sum of the dense rewards is the sparse score, so the gain is credit assignment, not more reward
    late = lambda h: sum(m["gold/reward"] for m in h[-5:]) / 5  # noqa: E731
    assert late(dense) > late(sparse)
