"""Tests for rlcourse.rl.advantages: every function against a naive loop and a hand-worked case.

The naive references below loop over b and t with Python floats; they are written from
the formulas in the docstrings, not copied from the vectorised code.
"""

import doctest
import math
import statistics

import pytest
import torch
from torch.testing import assert_close

import rlcourse.rl.advantages as adv_module
from rlcourse.rl.advantages import (batch_baseline_advantages, discounted_returns, gae, group_advantages,
                                    leave_one_out_advantages, whiten)
from rlcourse.rl import masked as masked_module
from rlcourse.rl.masked import masked_mean, masked_sum, masked_var

# ---------------------------------------------------------------------------
# Helpers and naive references
# ---------------------------------------------------------------------------


def ragged_mask(lengths, T):
    """(B, T) float mask with a prefix of ``lengths[b]`` ones in row b."""
    mask = torch.zeros(len(lengths), T, dtype=torch.float64)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1.0
    return mask


def random_batch(seed, B=5, T=7):
    g = torch.Generator().manual_seed(seed)
    lengths = [T, 1] + torch.randint(1, T + 1, (B - 2,), generator=g).tolist()  # full row and 1-token row
    mask = ragged_mask(lengths, T)  # (B, T)
    x = torch.randn(B, T, generator=g, dtype=torch.float64)  # (B, T)
    y = torch.randn(B, T, generator=g, dtype=torch.float64)  # (B, T)
    return x, y, mask, lengths


def with_garbage(x, mask, value=1e6):
    """Copy of ``x`` with every padded entry replaced by a large garbage value."""
    out = x.clone()
    out[mask == 0] = value
    return out


def naive_returns(rewards, lengths, gamma):
    """G_t = Σ_{k≥t, k<n} γ^{k−t} r_k with a double loop; 0 after the response."""
    B, T = rewards.shape
    out = [[0.0] * T for _ in range(B)]
    for b in range(B):
        for t in range(lengths[b]):
            out[b][t] = sum(gamma ** (k - t) * rewards[b, k].item() for k in range(t, lengths[b]))
    return torch.tensor(out, dtype=torch.float64)


def naive_td_residual(rewards, values, lengths, gamma):
    """δ_t = r_t + γ V_{t+1} − V_t, with V = 0 after the last response token."""
    B, T = rewards.shape
    out = [[0.0] * T for _ in range(B)]
    for b in range(B):
        n = lengths[b]
        for t in range(n):
            v_next = values[b, t + 1].item() if t + 1 < n else 0.0
            out[b][t] = rewards[b, t].item() + gamma * v_next - values[b, t].item()
    return torch.tensor(out, dtype=torch.float64)


def naive_gae(rewards, values, lengths, gamma, lam):
    """A_t = Σ_{k≥t} (γλ)^{k−t} δ_k (the closed form, not the recursion)."""
    deltas = naive_td_residual(rewards, values, lengths, gamma)
    B, T = rewards.shape
    out = [[0.0] * T for _ in range(B)]
    for b in range(B):
        for t in range(lengths[b]):
            out[b][t] = sum((gamma * lam) ** (k - t) * deltas[b, k].item() for k in range(t, lengths[b]))
    return torch.tensor(out, dtype=torch.float64)


def kept_values(x, mask):
    return [x[b, t].item() for b in range(x.shape[0]) for t in range(x.shape[1]) if mask[b, t] == 1]


# ---------------------------------------------------------------------------
# Masked statistics
# ---------------------------------------------------------------------------


def test_masked_stats_match_naive_loops():
    x, _, mask, _ = random_batch(0)
    kept = kept_values(x, mask)
    assert_close(masked_sum(x, mask), torch.tensor(sum(kept), dtype=torch.float64))
    assert_close(masked_mean(x, mask), torch.tensor(statistics.fmean(kept), dtype=torch.float64))
    assert_close(masked_var(x, mask), torch.tensor(statistics.variance(kept), dtype=torch.float64))
    assert_close(masked_var(x, mask, unbiased=False), torch.tensor(statistics.pvariance(kept), dtype=torch.float64))
    row_means = [statistics.fmean(kept_values(x[b : b + 1], mask[b : b + 1])) for b in range(x.shape[0])]
    assert_close(masked_mean(x, mask, dim=1), torch.tensor(row_means, dtype=torch.float64))
    row_sums = [sum(kept_values(x[b : b + 1], mask[b : b + 1])) for b in range(x.shape[0])]
    assert_close(masked_sum(x, mask, dim=1), torch.tensor(row_sums, dtype=torch.float64))


def test_masked_mean_hand_case_and_bool_mask():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert_close(masked_mean(x, mask), torch.tensor(7.0 / 3.0))  # (1 + 2 + 4) / 3
    assert_close(masked_var(x, mask), torch.tensor(7.0 / 3.0))  # ((4/3)² + (1/3)² + (5/3)²) / 2


def test_masked_stats_ignore_padding_even_inf():
    x, _, mask, _ = random_batch(1)
    for garbage in (1e6, -1e6, math.inf):
        dirty = with_garbage(x, mask, garbage)
        assert_close(masked_mean(dirty, mask), masked_mean(x, mask))
        assert_close(masked_sum(dirty, mask, dim=1), masked_sum(x, mask, dim=1))
        assert_close(masked_var(dirty, mask), masked_var(x, mask))


# ---------------------------------------------------------------------------
# whiten
# ---------------------------------------------------------------------------


def test_whiten_gives_mean_zero_std_one_and_zero_padding():
    x, _, mask, _ = random_batch(2)
    x = 3.0 * x + 5.0
    out = whiten(x, mask)
    kept = kept_values(out, mask)
    assert abs(statistics.fmean(kept)) < 1e-10
    assert abs(statistics.stdev(kept) - 1.0) < 1e-6
    assert torch.all(out[mask == 0] == 0)


def test_whiten_without_shift_keeps_the_mean():
    x, _, mask, _ = random_batch(3)
    x = 2.0 * x + 4.0
    out = whiten(x, mask, shift_mean=False)
    kept_in, kept_out = kept_values(x, mask), kept_values(out, mask)
    assert abs(statistics.fmean(kept_out) - statistics.fmean(kept_in)) < 1e-10
    assert abs(statistics.stdev(kept_out) - 1.0) < 1e-6
    assert torch.all(out[mask == 0] == 0)


def test_whiten_hand_case_and_padding_invariance():
    x = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    s = math.sqrt(2.0 + 1e-8)  # mean 2, unbiased var ((−1)² + 1²) / 1 = 2
    assert_close(whiten(x, mask), torch.tensor([[-1.0 / s, 1.0 / s, 0.0]]))
    assert_close(whiten(with_garbage(x, mask, -1e6), mask), whiten(x, mask))


# ---------------------------------------------------------------------------
# discounted returns and GAE
# ---------------------------------------------------------------------------


def test_discounted_returns_hand_case():
    rewards = torch.tensor([[1.0, 0.0, 2.0], [5.0, 7.0, 7.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    # row 0, γ = 0.5: G2 = 2;  G1 = 0 + 0.5·2 = 1;  G0 = 1 + 0.5·1 = 1.5
    # row 1: one token, G0 = 5; padding is 0 whatever the rewards there
    expected = torch.tensor([[1.5, 1.0, 2.0], [5.0, 0.0, 0.0]])
    assert_close(discounted_returns(rewards, mask, gamma=0.5), expected)


@pytest.mark.parametrize("gamma", [0.0, 0.37, 0.9, 1.0])
def test_discounted_returns_match_naive_loop(gamma):
    rewards, _, mask, lengths = random_batch(4)
    assert_close(discounted_returns(rewards, mask, gamma), naive_returns(rewards, lengths, gamma))


def test_gae_hand_case():
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.5, 0.5]])
    mask = torch.ones(1, 2)
    # δ1 = 1 + 0 − 0.5 = 0.5 (episode ends);  δ0 = 0 + 1·0.5 − 0.5 = 0
    # λ = 0.5: A1 = 0.5;  A0 = 0 + 1·0.5·0.5 = 0.25;  returns = A + V = [0.75, 1.0]
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    assert_close(advantages, torch.tensor([[0.25, 0.5]]))
    assert_close(returns, torch.tensor([[0.75, 1.0]]))


@pytest.mark.parametrize("seed", [5, 6])
def test_gae_lambda_zero_is_td_residual(seed):
    rewards, values, mask, lengths = random_batch(seed)
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.0)
    expected = naive_td_residual(rewards, values, lengths, 0.9)
    assert_close(advantages, expected)
    assert_close(returns, (expected + values) * mask)


@pytest.mark.parametrize("seed", [7, 8])
def test_gae_lambda_one_is_mc_return_minus_values(seed):
    rewards, values, mask, lengths = random_batch(seed)
    advantages, returns = gae(rewards, values, mask, gamma=0.8, lam=1.0)
    mc = naive_returns(rewards, lengths, 0.8)
    assert_close(advantages, (mc - values) * mask)
    assert_close(returns, mc)


@pytest.mark.parametrize("seed", range(9, 13))
def test_gae_matches_naive_loop_for_random_gamma_lambda(seed):
    rewards, values, mask, lengths = random_batch(seed, B=4, T=9)
    g = torch.Generator().manual_seed(100 + seed)
    gamma, lam = torch.rand(2, generator=g, dtype=torch.float64).tolist()
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    expected = naive_gae(rewards, values, lengths, gamma, lam)
    assert_close(advantages, expected)
    assert_close(returns, (expected + values) * mask)


def test_gae_and_returns_ignore_padding():
    rewards, values, mask, _ = random_batch(13)
    clean = gae(rewards, values, mask, 0.95, 0.9)
    dirty = gae(with_garbage(rewards, mask, 1e6), with_garbage(values, mask, -1e6), mask, 0.95, 0.9)
    assert_close(dirty, clean)
    assert torch.all(clean[0][mask == 0] == 0) and torch.all(clean[1][mask == 0] == 0)
    assert_close(discounted_returns(with_garbage(rewards, mask), mask, 0.9), discounted_returns(rewards, mask, 0.9))


def test_gae_outputs_are_detached_targets():
    rewards, values, mask, _ = random_batch(14)
    values = values.clone().requires_grad_(True)
    advantages, returns = gae(rewards, values, mask, 1.0, 0.95)
    assert not advantages.requires_grad and not returns.requires_grad


# ---------------------------------------------------------------------------
# Per-sequence advantages
# ---------------------------------------------------------------------------


def test_group_advantages_hand_case():
    rewards = torch.tensor([1.0, 0.0, 3.0, 3.0])
    # group [1, 0]: mean 0.5, unbiased std sqrt(0.5);  group [3, 3]: std 0, advantages 0
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    assert_close(group_advantages(rewards, group_size=2), torch.tensor([a, -a, 0.0, 0.0]))
    # one group [1, 2, 3, 6]: mean 3, unbiased var (4 + 1 + 0 + 9) / 3 = 14/3
    s = math.sqrt(14.0 / 3.0) + 1e-4
    expected = torch.tensor([-2.0 / s, -1.0 / s, 0.0, 3.0 / s])
    assert_close(group_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]), group_size=4), expected)


@pytest.mark.parametrize("group_size", [2, 3, 6])
def test_group_advantages_match_per_group_loop(group_size):
    g = torch.Generator().manual_seed(group_size)
    rewards = torch.randn(12, generator=g, dtype=torch.float64)  # (N,)
    expected = []
    for start in range(0, 12, group_size):
        group = rewards[start : start + group_size].tolist()
        mean, std = statistics.fmean(group), statistics.stdev(group)
        expected += [(r - mean) / (std + 1e-4) for r in group]
    assert_close(group_advantages(rewards, group_size), torch.tensor(expected, dtype=torch.float64))
    expected_eps0 = group_advantages(rewards, group_size, eps=0.0)
    assert_close(expected_eps0.reshape(-1, group_size).std(dim=1), torch.ones(12 // group_size, dtype=torch.float64))


def test_leave_one_out_hand_case():
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0])
    # baselines: mean of the other three = 11/3, 10/3, 9/3, 6/3
    expected = torch.tensor([1 - 11 / 3, 2 - 10 / 3, 3 - 9 / 3, 6 - 6 / 3])
    assert_close(leave_one_out_advantages(rewards, group_size=4), expected)


@pytest.mark.parametrize("group_size", [2, 4])
def test_leave_one_out_matches_loop(group_size):
    g = torch.Generator().manual_seed(20 + group_size)
    rewards = torch.randn(8, generator=g, dtype=torch.float64)  # (N,)
    expected = []
    for i in range(8):
        start = (i // group_size) * group_size
        others = [rewards[j].item() for j in range(start, start + group_size) if j != i]
        expected.append(rewards[i].item() - sum(others) / len(others))
    assert_close(leave_one_out_advantages(rewards, group_size), torch.tensor(expected, dtype=torch.float64))


def test_batch_baseline_hand_case():
    assert_close(batch_baseline_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0])), torch.tensor([-2.0, -1.0, 0.0, 3.0]))


# ---------------------------------------------------------------------------
# Errors speak to the user
# ---------------------------------------------------------------------------


def test_errors_are_value_errors_with_clear_messages():
    x = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"mask must have the same shape as x, got \(2, 4\) and \(2, 3\)"):
        masked_mean(x, torch.ones(2, 4))
    with pytest.raises(ValueError, match="floating-point tensor, got dtype torch.int64"):
        masked_mean(torch.zeros(2, 3, dtype=torch.long), mask)
    with pytest.raises(ValueError, match="must be a torch.Tensor, got list"):
        masked_sum([1.0, 2.0], mask)
    with pytest.raises(ValueError, match="only 0 and 1"):
        masked_mean(x, 2 * mask)
    with pytest.raises(ValueError, match="at least 1 token"):
        masked_mean(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="at least 2 token"):
        masked_var(x, torch.tensor([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"rewards must have shape \(B, T\), got shape \(3,\)"):
        discounted_returns(torch.zeros(3), torch.ones(3), 0.9)
    with pytest.raises(ValueError, match="contiguous prefix"):
        discounted_returns(x, torch.tensor([[0, 1, 1], [1, 1, 1]]), 0.9)
    with pytest.raises(ValueError, match=r"gamma must be a finite number in \[0.0, 1.0\], got 1.5"):
        gae(x, x, mask, gamma=1.5, lam=0.9)
    with pytest.raises(ValueError, match="lam must be"):
        gae(x, x, mask, gamma=1.0, lam=-0.1)
    with pytest.raises(ValueError, match=r"values must have the same shape as rewards, got \(2, 2\) and \(2, 3\)"):
        gae(x, torch.zeros(2, 2), mask, 1.0, 0.95)
    with pytest.raises(ValueError, match="group_size=4 does not divide the number of rewards N=6"):
        group_advantages(torch.zeros(6), group_size=4)
    with pytest.raises(ValueError, match="group_size must be an integer >= 2, got 1"):
        leave_one_out_advantages(torch.zeros(6), group_size=1)
    with pytest.raises(ValueError, match=r"rewards must have shape \(N,\), got shape \(2, 3\)"):
        group_advantages(x, group_size=3)
    with pytest.raises(ValueError, match="floating-point"):
        batch_baseline_advantages(torch.tensor([1, 2, 3]))


def test_error_messages_are_one_sentence():
    with pytest.raises(ValueError) as info:
        gae(torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2, 3), 1.0, 0.95)
    message = str(info.value)
    assert message.endswith(".") and message.count(". ") == 0 and ";" in message


def test_docstring_examples_run():
    result = doctest.testmod(adv_module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


def test_masked_module_docstring_examples_run_and_it_sits_below_the_others():
    result = doctest.testmod(masked_module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
    import ast
    from pathlib import Path

    tree = ast.parse(Path(masked_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | \
               {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name and name.startswith("rlcourse") for name in imported)  # the lowest layer
