"""Tests for rlcourse.rl.losses: naive per-token loops, hand-worked cases, gradients, padding.

The naive references loop over b and t with Python floats and ``math``; they follow the
formulas in the docstrings, not the vectorised code.
"""

import doctest
import math

import pytest
import torch
from torch.testing import assert_close

import rlcourse.rl.losses as losses_module
from rlcourse.rl.losses import dpo_loss, kl_k1, kl_k2, kl_k3, ppo_clip_loss, reinforce_loss, value_loss

# ---------------------------------------------------------------------------
# Helpers and naive references
# ---------------------------------------------------------------------------


def ragged_batch(seed, B=4, T=6):
    """Random float64 (B, T) tensors and a ragged prefix mask (one full row, one 1-token row)."""
    g = torch.Generator().manual_seed(seed)
    lengths = [T, 1] + torch.randint(1, T + 1, (B - 2,), generator=g).tolist()
    mask = torch.zeros(B, T, dtype=torch.float64)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1.0
    logprobs = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3  # (B, T) in (−3, 0]
    old_logprobs = logprobs + 0.4 * torch.randn(B, T, generator=g, dtype=torch.float64)  # (B, T) ratios ~ e^{±0.4}
    advantages = torch.randn(B, T, generator=g, dtype=torch.float64)  # (B, T)
    return logprobs, old_logprobs, advantages, mask


def garbage_on_padding(x, mask, value=1e6):
    out = x.clone()
    out[mask == 0] = value
    return out


def advantage_at(advantages, b, t):
    return advantages[b].item() if advantages.dim() == 1 else advantages[b, t].item()


def naive_reinforce(logprobs, advantages, mask):
    total, count = 0.0, 0
    for b in range(logprobs.shape[0]):
        for t in range(logprobs.shape[1]):
            if mask[b, t] == 1:
                total += -advantage_at(advantages, b, t) * logprobs[b, t].item()
                count += 1
    return total / count


def naive_ppo(logprobs, old_logprobs, advantages, mask, clip_eps):
    """Returns (loss, clipfrac, approx_kl, ratio_mean), token-level means."""
    loss = clipped_count = kl = ratio_sum = 0.0
    count = 0
    for b in range(logprobs.shape[0]):
        for t in range(logprobs.shape[1]):
            if mask[b, t] != 1:
                continue
            a = advantage_at(advantages, b, t)
            ratio = math.exp(logprobs[b, t].item() - old_logprobs[b, t].item())
            unclipped = -a * ratio
            clipped = -a * min(max(ratio, 1 - clip_eps), 1 + clip_eps)
            loss += max(unclipped, clipped)
            clipped_count += clipped > unclipped
            kl += (ratio - 1) - math.log(ratio)
            ratio_sum += ratio
            count += 1
    return loss / count, clipped_count / count, kl / count, ratio_sum / count


def naive_value_loss(values, old_values, returns, mask, clip_eps):
    loss = clipped_count = 0.0
    count = 0
    for b in range(values.shape[0]):
        for t in range(values.shape[1]):
            if mask[b, t] != 1:
                continue
            v, v_old, r = values[b, t].item(), old_values[b, t].item(), returns[b, t].item()
            plain = (v - r) ** 2
            if clip_eps is None:
                loss += plain
            else:
                v_clip = v_old + min(max(v - v_old, -clip_eps), clip_eps)
                loss += max(plain, (v_clip - r) ** 2)
                clipped_count += (v_clip - r) ** 2 > plain
            count += 1
    return 0.5 * loss / count, clipped_count / count


def t64(values):
    return torch.tensor(values, dtype=torch.float64)


# ---------------------------------------------------------------------------
# REINFORCE
# ---------------------------------------------------------------------------


def test_reinforce_hand_case():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, -9.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    # −A·logπ per kept token: row 0 (A=1): 1, 2;  row 1 (A=−2): −1  → (1 + 2 − 1) / 3
    assert_close(reinforce_loss(logprobs, torch.tensor([1.0, -2.0]), mask), torch.tensor(2.0 / 3.0))


@pytest.mark.parametrize("per_sequence", [True, False])
def test_reinforce_matches_naive_loop_and_gradient(per_sequence):
    logprobs, _, advantages, mask = ragged_batch(0)
    if per_sequence:
        advantages = advantages[:, 0]  # (B,)
    logprobs = logprobs.clone().requires_grad_(True)
    loss = reinforce_loss(logprobs, advantages, mask)
    assert_close(loss, t64(naive_reinforce(logprobs.detach(), advantages, mask)))
    loss.backward()
    token_adv = advantages[:, None].expand_as(mask) if per_sequence else advantages  # (B, T)
    assert_close(logprobs.grad, -token_adv * mask / mask.sum())  # ∂/∂logπ_t = −A_t m_t / Σm


def test_reinforce_ignores_padding_and_long_responses_are_not_downweighted():
    logprobs, _, advantages, mask = ragged_batch(1)
    clean = reinforce_loss(logprobs, advantages, mask)
    dirty = reinforce_loss(garbage_on_padding(logprobs, mask), garbage_on_padding(advantages, mask, -1e6), mask)
    assert_close(dirty, clean)
    inf_lp = garbage_on_padding(logprobs, mask, -math.inf).requires_grad_(True)  # log π = −inf on padding
    loss = reinforce_loss(inf_lp, advantages, mask)
    loss.backward()
    assert_close(loss, clean)
    assert torch.isfinite(inf_lp.grad).all() and torch.all(inf_lp.grad[mask == 0] == 0)
    # token-level mean: two sequences of 1 and 3 tokens with −A·logπ = 1 everywhere → mean 1,
    # while the second sequence holds 3/4 of the weight (a per-sequence mean would give it 1/2).
    logprobs = torch.tensor([[-1.0, 0.0, 0.0], [-2.0, -2.0, -2.0]])
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    assert_close(reinforce_loss(logprobs, torch.tensor([1.0, 0.5]), mask), torch.tensor(1.0))
    weights = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).requires_grad_(True)
    reinforce_loss(-weights, torch.tensor([1.0, 1.0]), mask).backward()
    assert_close(weights.grad, torch.tensor([[0.25, 0.0, 0.0], [0.25, 0.25, 0.25]]))


# ---------------------------------------------------------------------------
# PPO clipped surrogate
# ---------------------------------------------------------------------------

# Six tokens, ε = 0.2, old log-probs 0 so ratio = exp(logprobs):
#   A    ratio  −A·ratio  −A·clip(ratio)  taken        ∂ℓ/∂logπ = −A·ratio (if unclipped)
#  +1    1.5    −1.5      −1.2            clipped      0
#  +1    0.5    −0.5      −0.8            unclipped    −0.5
#  +1    1.1    −1.1      −1.1            (tie)        −1.1
#  −1    1.5     1.5       1.2            unclipped    +1.5
#  −1    0.5     0.5       0.8            clipped      0
#  −1    0.9     0.9       0.9            (tie)        +0.9
# loss = (−1.2 − 0.5 − 1.1 + 1.5 + 0.8 + 0.9) / 6 = 0.4 / 6;  clipfrac = 2 / 6
PPO_RATIOS = [[1.5, 0.5, 1.1], [1.5, 0.5, 0.9]]
PPO_TOKEN_LOSSES = [[-1.2, -0.5, -1.1], [1.5, 0.8, 0.9]]
PPO_GRADS = [[0.0, -0.5, -1.1], [1.5, 0.0, 0.9]]


@pytest.mark.parametrize("per_sequence", [True, False])
def test_ppo_four_clipping_cases_values_and_gradients(per_sequence):
    logprobs = torch.log(t64(PPO_RATIOS)).requires_grad_(True)  # (2, 3)
    old_logprobs = torch.zeros(2, 3, dtype=torch.float64)
    advantages = t64([1.0, -1.0]) if per_sequence else t64([[1.0] * 3, [-1.0] * 3])
    mask = torch.ones(2, 3)
    loss, stats = ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip_eps=0.2)
    assert_close(loss, t64(sum(map(sum, PPO_TOKEN_LOSSES)) / 6))
    assert_close(stats["clipfrac"], t64(2 / 6))
    loss.backward()
    assert_close(logprobs.grad, t64(PPO_GRADS) / 6)
    clipped = torch.tensor([[True, False, False], [False, True, False]])
    assert torch.all(logprobs.grad[clipped] == 0)  # exactly zero where the clipped constant wins
    assert torch.all(logprobs.grad[~clipped] != 0)


def test_ppo_matches_naive_loop_with_stats():
    logprobs, old_logprobs, advantages, mask = ragged_batch(2)
    for adv in (advantages, advantages[:, 0]):
        loss, stats = ppo_clip_loss(logprobs, old_logprobs, adv, mask, clip_eps=0.2)
        ref_loss, ref_clipfrac, ref_kl, ref_ratio = naive_ppo(logprobs, old_logprobs, adv, mask, 0.2)
        assert_close(loss, t64(ref_loss))
        assert_close(stats["clipfrac"], t64(ref_clipfrac))
        assert_close(stats["approx_kl"], t64(ref_kl))
        assert_close(stats["ratio_mean"], t64(ref_ratio))
        assert 0 < ref_clipfrac < 1  # the random batch exercises both branches


def test_ppo_on_policy_equals_reinforce_gradient_and_stats_are_detached():
    logprobs, _, advantages, mask = ragged_batch(3)
    logprobs = logprobs.clone().requires_grad_(True)
    loss, stats = ppo_clip_loss(logprobs, logprobs.detach(), advantages, mask, clip_eps=0.2)
    (grad,) = torch.autograd.grad(loss, logprobs)
    assert_close(grad, -advantages * mask / mask.sum())  # ratio = 1: ∇ρ = ∇ log π
    assert_close(stats["ratio_mean"], t64(1.0))
    assert_close(stats["approx_kl"], t64(0.0))
    assert_close(stats["clipfrac"], t64(0.0))
    assert all(v.dim() == 0 and not v.requires_grad for v in stats.values())
    assert set(stats) == {"clipfrac", "approx_kl", "ratio_mean", "ratio_var"}
    assert_close(stats["ratio_var"], t64(0.0))


def test_ppo_ignores_padding_in_loss_stats_and_gradient():
    logprobs, old_logprobs, advantages, mask = ragged_batch(4)
    clean_lp = logprobs.clone().requires_grad_(True)
    clean_loss, clean_stats = ppo_clip_loss(clean_lp, old_logprobs, advantages, mask, 0.2)
    clean_loss.backward()
    dirty_lp = garbage_on_padding(logprobs, mask, 1e6).requires_grad_(True)  # exp(1e6) would overflow
    dirty_loss, dirty_stats = ppo_clip_loss(
        dirty_lp, garbage_on_padding(old_logprobs, mask, -1e6), garbage_on_padding(advantages, mask), mask, 0.2
    )
    dirty_loss.backward()
    assert_close(dirty_loss, clean_loss)
    assert_close(dirty_stats, clean_stats)
    assert_close(dirty_lp.grad, clean_lp.grad)
    assert torch.all(dirty_lp.grad[mask == 0] == 0)
    # log π = −inf on padding (a masked logit) must not turn the gradient into nan either
    inf_lp = garbage_on_padding(logprobs, mask, -math.inf).requires_grad_(True)
    inf_loss, _ = ppo_clip_loss(inf_lp, old_logprobs, advantages, mask, 0.2)
    inf_loss.backward()
    assert_close(inf_loss, clean_loss)
    assert_close(inf_lp.grad, clean_lp.grad)


# ---------------------------------------------------------------------------
# Value loss
# ---------------------------------------------------------------------------


def test_value_loss_hand_case_clipped_vs_unclipped():
    values = torch.tensor([[1.0, -1.0]], requires_grad=True)
    old_values = torch.zeros(1, 2)
    returns = torch.tensor([[1.5, 2.0]])
    mask = torch.ones(1, 2)
    # unclipped: (V − R)² = [0.25, 9]  → ½ · 9.25 / 2 = 2.3125
    loss, stats = value_loss(values, old_values, returns, mask)
    assert_close(loss, torch.tensor(2.3125))
    assert_close(stats["clipfrac"], torch.tensor(0.0))
    # ε = 0.5: V_clip = [0.5, −0.5], (V_clip − R)² = [1, 6.25]; max = [1, 9] → ½ · 10 / 2 = 2.5
    loss, stats = value_loss(values, old_values, returns, mask, clip_eps=0.5)
    assert_close(loss, torch.tensor(2.5))
    assert_close(stats["clipfrac"], torch.tensor(0.5))
    loss.backward()
    # token 0: clipped term wins, gradient 0;  token 1: ½ · 2 (V − R) / 2 = −1.5
    assert_close(values.grad, torch.tensor([[0.0, -1.5]]))


@pytest.mark.parametrize("clip_eps", [None, 0.1, 0.3])
def test_value_loss_matches_naive_loop(clip_eps):
    values, old_values, returns, mask = ragged_batch(5)
    loss, stats = value_loss(values, old_values, returns, mask, clip_eps)
    ref_loss, ref_clipfrac = naive_value_loss(values, old_values, returns, mask, clip_eps)
    assert_close(loss, t64(ref_loss))
    assert_close(stats["clipfrac"], t64(ref_clipfrac))
    if clip_eps == 0.1:
        assert 0 < ref_clipfrac < 1


def test_value_loss_ignores_padding():
    values, old_values, returns, mask = ragged_batch(6)
    clean = value_loss(values, old_values, returns, mask, 0.2)
    dirty = value_loss(
        garbage_on_padding(values, mask),
        garbage_on_padding(old_values, mask, -1e6),
        garbage_on_padding(returns, mask, 3e5),
        mask,
        0.2,
    )
    assert_close(dirty, clean)


# ---------------------------------------------------------------------------
# KL estimators
# ---------------------------------------------------------------------------


def test_kl_estimators_hand_values():
    logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]], dtype=torch.float64)
    ref_logprobs = torch.tensor([[math.log(0.25), math.log(0.5)]], dtype=torch.float64)
    # token 0: π = 0.5, π_ref = 0.25, r = 0.5;  token 1: π = 0.25, π_ref = 0.5, r = 2
    ln2 = math.log(2.0)
    assert_close(kl_k1(logprobs, ref_logprobs), t64([[ln2, -ln2]]))
    assert_close(kl_k2(logprobs, ref_logprobs), t64([[0.5 * ln2**2, 0.5 * ln2**2]]))
    assert_close(kl_k3(logprobs, ref_logprobs), t64([[0.5 - 1 + ln2, 2 - 1 - ln2]]))  # (r − 1) − log r


def test_kl_estimators_match_naive_loop():
    logprobs, ref_logprobs, _, _ = ragged_batch(7)
    B, T = logprobs.shape
    k1, k2, k3 = ([[0.0] * T for _ in range(B)] for _ in range(3))
    for b in range(B):
        for t in range(T):
            lp, ref = logprobs[b, t].item(), ref_logprobs[b, t].item()
            k1[b][t] = lp - ref
            k2[b][t] = 0.5 * (lp - ref) ** 2
            k3[b][t] = math.exp(ref - lp) - (ref - lp) - 1
    assert_close(kl_k1(logprobs, ref_logprobs), t64(k1))
    assert_close(kl_k2(logprobs, ref_logprobs), t64(k2))
    assert_close(kl_k3(logprobs, ref_logprobs), t64(k3))


def test_k3_is_never_negative_but_k1_can_be():
    g = torch.Generator().manual_seed(8)
    logprobs = -5 * torch.rand(1000, 20, generator=g)  # (1000, 20) float32
    ref_logprobs = logprobs + 4 * torch.randn(1000, 20, generator=g)  # (1000, 20) far apart
    near = logprobs + 1e-7 * torch.randn(1000, 20, generator=g)  # (1000, 20) rounding regime
    assert (kl_k1(logprobs, ref_logprobs) < 0).any()
    assert (kl_k3(logprobs, ref_logprobs) >= 0).all()
    assert (kl_k3(logprobs, near) >= 0).all()
    assert (kl_k3(logprobs, logprobs) == 0).all()


def test_k1_and_k3_means_approach_exact_kl_of_categoricals():
    p = t64([0.5, 0.3, 0.2])  # π
    q = t64([0.2, 0.5, 0.3])  # π_ref
    exact = sum(pi * math.log(pi / qi) for pi, qi in zip(p.tolist(), q.tolist()))  # KL(π‖π_ref) ≈ 0.2749
    g = torch.Generator().manual_seed(0)
    actions = torch.multinomial(p, 200_000, replacement=True, generator=g)  # (S,) a ~ π
    logprobs = p.log()[actions][None, :]  # (1, S)
    ref_logprobs = q.log()[actions][None, :]  # (1, S)
    assert abs(kl_k1(logprobs, ref_logprobs).mean().item() - exact) < 0.01
    assert abs(kl_k3(logprobs, ref_logprobs).mean().item() - exact) < 0.01
    assert (kl_k1(logprobs, ref_logprobs) < 0).any()  # single samples of k1 do go negative


# ---------------------------------------------------------------------------
# DPO
# ---------------------------------------------------------------------------


def log_sigmoid(x):
    return math.log(1.0 / (1.0 + math.exp(-x)))


def test_dpo_hand_case_and_stats():
    beta = 0.1
    policy_chosen, policy_rejected = t64([-1.0, -5.0]), t64([-3.0, -2.0])
    ref_chosen, ref_rejected = t64([-2.0, -4.0]), t64([-2.0, -2.0])
    # pair 0: chosen reward 0.1·(−1 + 2) = 0.1, rejected 0.1·(−3 + 2) = −0.1, margin 0.2
    # pair 1: chosen reward 0.1·(−5 + 4) = −0.1, rejected 0.1·(−2 + 2) = 0, margin −0.1
    expected = -(log_sigmoid(0.2) + log_sigmoid(-0.1)) / 2  # (0.598139 + 0.744397) / 2
    loss, stats = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    assert_close(loss, t64(expected))
    assert abs(expected - 0.671268) < 1e-6
    assert_close(stats["rewards/chosen"], t64(0.0))
    assert_close(stats["rewards/rejected"], t64(-0.05))
    assert_close(stats["rewards/margins"], t64(0.05))
    assert_close(stats["rewards/accuracies"], t64(0.5))
    assert all(v.dim() == 0 and not v.requires_grad for v in stats.values())


def test_dpo_gradient_matches_naive_and_is_stable_for_huge_margins():
    g = torch.Generator().manual_seed(9)
    pc, pr, rc, rr = (-10 * torch.rand(5, generator=g, dtype=torch.float64) for _ in range(4))
    pc.requires_grad_(True)
    loss, _ = dpo_loss(pc, pr, rc, rr, beta=0.5)
    loss.backward()
    # ∂/∂log π_c of −log σ(z)/B with z = β(...) is −β σ(−z) / B
    for b in range(5):
        z = 0.5 * ((pc[b].item() - rc[b].item()) - (pr[b].item() - rr[b].item()))
        assert abs(pc.grad[b].item() - (-0.5 / (1 + math.exp(z)) / 5)) < 1e-12
    loss, stats = dpo_loss(t64([-2000.0]), t64([0.0]), t64([0.0]), t64([0.0]), beta=1.0)
    assert_close(loss, t64(2000.0))  # −log σ(−2000) = 2000, no overflow to inf
    assert_close(stats["rewards/accuracies"], t64(0.0))
    _, stats = dpo_loss(t64([-1.0]), t64([-1.0]), t64([0.0]), t64([0.0]), beta=1.0)
    assert_close(stats["rewards/accuracies"], t64(0.0))  # a tie is not a correct ranking


# ---------------------------------------------------------------------------
# Errors speak to the user
# ---------------------------------------------------------------------------


def test_errors_are_value_errors_with_clear_messages():
    lp = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"logprobs must have shape \(B, T\), got shape \(3,\)"):
        reinforce_loss(torch.zeros(3), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"advantages of shape \(3,\) must have one entry per sequence"):
        reinforce_loss(lp, torch.zeros(3), mask)
    with pytest.raises(ValueError, match=r"advantages must have shape \(B,\) or \(B, T\)"):
        ppo_clip_loss(lp, lp, torch.zeros(2, 3, 1), mask, 0.2)
    with pytest.raises(ValueError, match=r"old_logprobs must have the same shape as logprobs, got \(2, 2\)"):
        ppo_clip_loss(lp, torch.zeros(2, 2), torch.zeros(2), mask, 0.2)
    with pytest.raises(ValueError, match="floating-point tensor, got dtype torch.int64"):
        ppo_clip_loss(lp.long(), lp, torch.zeros(2), mask, 0.2)
    with pytest.raises(ValueError, match=r"mask must have the same shape as logprobs"):
        ppo_clip_loss(lp, lp, torch.zeros(2), torch.ones(3, 2), 0.2)
    with pytest.raises(ValueError, match=r"clip_eps must be a finite number in \(0.0, inf\)"):
        ppo_clip_loss(lp, lp, torch.zeros(2), mask, -0.2)
    with pytest.raises(ValueError, match="at least 1 token"):
        ppo_clip_loss(lp, lp, torch.zeros(2), torch.zeros(2, 3), 0.2)
    with pytest.raises(ValueError, match="returns must have the same shape as values"):
        value_loss(lp, lp, torch.zeros(2, 4), mask)
    with pytest.raises(ValueError, match="clip_eps must be"):
        value_loss(lp, lp, lp, mask, clip_eps=0.0)
    with pytest.raises(ValueError, match="ref_logprobs must have the same shape as logprobs"):
        kl_k3(lp, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="ref_rejected_logps must have the same shape as policy_chosen_logps"):
        dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(3), beta=0.1)
    with pytest.raises(ValueError, match=r"policy_chosen_logps must have shape \(B,\)"):
        dpo_loss(lp, lp, lp, lp, beta=0.1)
    with pytest.raises(ValueError, match="beta must be"):
        dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta=0)


def test_docstring_examples_run():
    result = doctest.testmod(losses_module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_advantages_are_refused_not_trained_on(bad):
    """A NaN advantage on a response token would silently turn the loss (and every weight) into NaN."""
    logprobs, mask = torch.zeros(2, 3), torch.tensor([[1, 1, 0], [1, 0, 0]])
    for advantages in (torch.tensor([1.0, bad]), torch.tensor([[1.0, bad, 0.0], [0.0, 0.0, 0.0]])):
        with pytest.raises(ValueError, match="advantages hold NaN or inf on response tokens"):
            ppo_clip_loss(logprobs, logprobs, advantages, mask, 0.2)
        with pytest.raises(ValueError, match="advantages hold NaN or inf on response tokens"):
            reinforce_loss(logprobs, advantages, mask)
    padded = torch.tensor([[1.0, 2.0, bad], [3.0, bad, bad]])  # NaN only on padding: fine
    assert torch.isfinite(reinforce_loss(logprobs, padded, mask))
