"""rlcourse.rl.analysis against hand-worked cases and naive loops."""

import copy
import itertools
import math

import pytest
import torch

from rlcourse.model import policy
from rlcourse.rl import analysis
from rlcourse.world import grammar


# ----------------------------------------------------------------------------- words


def test_word_frequencies_hand_worked():
    assert analysis.word_frequencies(["a b a", "c ."]) == {"a": 0.4, "b": 0.2, "c": 0.2, ".": 0.2}


def test_word_frequency_shift_hand_worked():
    before = ["the film was bad .", "the film was bad ."]  # 10 words: bad 0.2, . 0.2, ...
    after = ["the film was good .", "the film was great ."]  # good 0.1, great 0.1
    shift = analysis.word_frequency_shift(before, after, top=2)
    # up: good +0.1 and great +0.1 (ties in word order), down: bad −0.2
    assert shift == [("good", 0.0, 0.1), ("great", 0.0, 0.1), ("bad", 0.2, 0.0)]


def test_word_frequency_shift_matches_naive_counting():
    before, after = grammar.sample_reviews(50, seed=0), grammar.sample_reviews(50, seed=1)

    def share(texts, word):  # naive: count by scanning every word
        words = [w for t in texts for w in t.split()]
        return sum(w == word for w in words) / len(words)

    vocab = {w for t in before + after for w in t.split()}
    diffs = {w: share(after, w) - share(before, w) for w in vocab}
    shift = analysis.word_frequency_shift(before, after, top=3)
    best_up = max(diffs.values())
    assert math.isclose(shift[0][2] - shift[0][1], best_up, abs_tol=1e-12)
    assert math.isclose(shift[-1][2] - shift[-1][1], min(diffs.values()), abs_tol=1e-12)
    for word, f_before, f_after in shift:
        assert math.isclose(f_before, share(before, word)) and math.isclose(f_after, share(after, word))


def test_word_frequency_shift_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty list of strings"):
        analysis.word_frequency_shift("a b", ["a"])
    with pytest.raises(ValueError, match="top must be"):
        analysis.word_frequency_shift(["a"], ["b"], top=0)


# ----------------------------------------------------------------------------- KL per position


def test_per_position_kl_zero_for_identical_models(tiny):
    model, tokenizer = tiny
    gen = policy.generate(model, tokenizer, ["the film was", "i think"], 8, generator=torch.Generator().manual_seed(0))
    kl, by_position = analysis.per_position_kl(model, model, gen)
    assert kl.shape == gen.response_ids.shape and by_position.shape == (gen.response_ids.shape[1],)
    torch.testing.assert_close(kl, torch.zeros_like(kl), atol=1e-6, rtol=0)


def test_per_position_kl_matches_naive_loop(tiny):
    model, tokenizer = tiny
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    gen = policy.generate(model, tokenizer, ["the film was", "long ago ,", "i think"], 6,
                          generator=torch.Generator().manual_seed(1))
    kl, by_position = analysis.per_position_kl(model, other, gen)
    # naive: one sequence at a time, unpadded, the KL as a sum over the vocabulary in a Python loop
    for n in range(3):
        length = int(gen.response_mask[n].sum())
        prompt = gen.prompt_ids[n][gen.prompt_mask[n].bool()]
        ids = torch.cat([prompt, gen.response_ids[n, :length]])[None]
        with torch.no_grad():
            p = torch.softmax(model(ids).logits[0].double(), -1)
            q = torch.softmax(other(ids).logits[0].double(), -1)
        for t in range(length):
            pos = len(prompt) - 1 + t  # the logits that predict response token t
            expected = sum(float(p[pos, a] * (p[pos, a].log() - q[pos, a].log())) for a in range(p.shape[1]))
            assert math.isclose(float(kl[n, t]), expected, rel_tol=1e-3, abs_tol=1e-5)
        assert float(kl[n, length:].abs().sum()) == 0.0
    mask = gen.response_mask.float()
    torch.testing.assert_close(by_position, kl.sum(0) / mask.sum(0).clamp(min=1))


# ----------------------------------------------------------------------------- KL estimators, exactly

LN2 = math.log(2.0)
P3, Q3 = [0.5, 0.25, 0.25], [0.25, 0.5, 0.25]  # π and π_ref of the hand-worked V = 3 case


def _logits(*dists):
    """(1, len(dists), V) logits whose softmax is each given distribution."""
    return torch.tensor(dists, dtype=torch.float64).log()[None]


def test_kl_estimator_stats_hand_worked():
    # π = [½, ¼, ¼], π_ref = [¼, ½, ¼]: log π/π_ref = [log 2, −log 2, 0], r = π_ref/π = [½, 2, 1]
    stats = analysis.kl_estimator_stats(_logits(P3), _logits(Q3), torch.tensor([[1]]), torch.ones(1, 1))
    kl = 0.5 * LN2 - 0.25 * LN2  # ¼ log 2
    assert math.isclose(float(stats["exact"]), kl, rel_tol=1e-12)
    assert math.isclose(float(stats["k1"]["expected"]), kl, rel_tol=1e-12)
    assert math.isclose(float(stats["k2"]["expected"]), 0.5 * LN2**2 * (0.5 + 0.25), rel_tol=1e-12)  # ⅜ (log 2)²
    assert math.isclose(float(stats["k3"]["expected"]), 0.5 * (0.5 - 1 + LN2) + 0.25 * (2 - 1 - LN2), rel_tol=1e-12)
    assert abs(stats["k1"]["bias"]) < 1e-15 and abs(stats["k3"]["bias"]) < 1e-15
    assert math.isclose(stats["k2"]["bias"], 0.375 * LN2**2 - 0.25 * LN2, rel_tol=1e-12)
    # Var_π[k1] = Σ π (log π/π_ref)² − KL² = ¾ (log 2)² − (¼ log 2)²
    assert math.isclose(stats["k1"]["exact_std"], math.sqrt(0.75 * LN2**2 - kl**2), rel_tol=1e-12)
    # the sampled token is a = 1: k1 = −log 2, k2 = ½ (log 2)², k3 = 2 − 1 − log 2
    assert math.isclose(float(stats["k1"]["samples"]), -LN2, rel_tol=1e-12)
    assert math.isclose(float(stats["k2"]["samples"]), 0.5 * LN2**2, rel_tol=1e-12)
    assert math.isclose(float(stats["k3"]["samples"]), 1 - LN2, rel_tol=1e-12)


def test_kl_estimator_stats_match_naive_loops():
    generator = torch.Generator().manual_seed(0)
    N, T, V = 3, 4, 5
    logits, ref_logits = torch.randn(N, T, V, generator=generator), torch.randn(N, T, V, generator=generator)
    actions = torch.randint(V, (N, T), generator=generator)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    stats = analysis.kl_estimator_stats(logits, ref_logits, actions, mask)
    formulas = {"k1": lambda lr: -lr, "k2": lambda lr: 0.5 * lr**2, "k3": lambda lr: math.exp(lr) - 1 - lr}
    for name, k in formulas.items():
        errors, biases, variances = [], [], []
        for n in range(N):
            for t in range(int(mask[n].sum())):
                p = torch.softmax(logits[n, t].double(), -1).tolist()
                q = torch.softmax(ref_logits[n, t].double(), -1).tolist()
                exact = sum(p[a] * math.log(p[a] / q[a]) for a in range(V))
                mean = sum(p[a] * k(math.log(q[a] / p[a])) for a in range(V))
                variances.append(sum(p[a] * (k(math.log(q[a] / p[a])) - mean) ** 2 for a in range(V)))
                biases.append(mean - exact)
                sample = k(math.log(q[int(actions[n, t])] / p[int(actions[n, t])]))
                assert math.isclose(float(stats[name]["samples"][n, t]), sample, rel_tol=1e-9, abs_tol=1e-12)
                assert math.isclose(float(stats[name]["expected"][n, t]), mean, rel_tol=1e-9, abs_tol=1e-12)
                errors.append(sample - exact)
        assert math.isclose(stats[name]["bias"], sum(biases) / len(biases), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(stats[name]["exact_std"], math.sqrt(sum(variances) / len(variances)), rel_tol=1e-9)
        assert math.isclose(stats[name]["std"], torch.tensor(errors).std().item(), rel_tol=1e-6)
        assert float(stats[name]["samples"][~mask.bool()].abs().sum()) == 0.0
    assert abs(stats["k1"]["bias"]) < 1e-12 and abs(stats["k3"]["bias"]) < 1e-12 and stats["k2"]["bias"] > 0


def _autograd_kl_gradients(logits, ref_logits):
    """∇_z KL(π‖π_ref) and ∇_z KL(π_ref‖π) by autograd of the closed-form KLs, one position at a time."""
    reverse, forward = torch.zeros_like(logits), torch.zeros_like(logits)
    for n in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            z = logits[n, t].clone().requires_grad_(True)
            p, q = torch.softmax(z, -1), torch.softmax(ref_logits[n, t], -1)
            (reverse[n, t],) = torch.autograd.grad((p * (p.log() - q.log())).sum(), z)
            (forward[n, t],) = torch.autograd.grad((q * (q.log() - torch.log_softmax(z, -1))).sum(), z)
    return reverse, forward


def test_kl_estimator_gradients_hand_worked():
    grads = analysis.kl_estimator_gradients(_logits(P3), _logits(Q3), torch.ones(1, 1))
    # ∇_z KL(π‖π_ref) = π ⊙ (log π/π_ref − KL) = [½·¾, ¼·(−5/4), ¼·(−¼)] log 2
    # ∇_z KL(π_ref‖π) = π − π_ref
    reverse = torch.tensor([[[0.375, -0.3125, -0.0625]]], dtype=torch.float64) * LN2
    forward = torch.tensor([[[0.25, -0.25, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(grads["reverse"], reverse)
    torch.testing.assert_close(grads["forward"], forward)
    torch.testing.assert_close(grads["k1/loss"], torch.zeros_like(reverse), atol=1e-15, rtol=0)  # E_π[∇ log π] = 0
    torch.testing.assert_close(grads["k2/loss"], reverse)
    torch.testing.assert_close(grads["k3/loss"], forward)
    torch.testing.assert_close(grads["k1/reward"], reverse)
    torch.testing.assert_close(grads["k3/reward"], reverse - forward)
    # k2 in the reward, by hand: Σ_a π(a) ½(log r_a)² (e_a − π), with (log r)² = [(log 2)², (log 2)², 0]
    p = torch.tensor(P3, dtype=torch.float64)
    half_sq = 0.5 * LN2**2 * torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    k2_reward = sum(p[a] * half_sq[a] * (torch.eye(3, dtype=torch.float64)[a] - p) for a in range(3))
    torch.testing.assert_close(grads["k2/reward"][0, 0], k2_reward)


def test_kl_estimator_gradients_match_autograd_of_closed_forms():
    generator = torch.Generator().manual_seed(1)
    N, T, V = 2, 3, 6
    logits = torch.randn(N, T, V, generator=generator, dtype=torch.float64)
    ref_logits = torch.randn(N, T, V, generator=generator, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    grads = analysis.kl_estimator_gradients(logits, ref_logits, mask)
    reverse, forward = _autograd_kl_gradients(logits, ref_logits)
    keep = mask.bool()[..., None]
    torch.testing.assert_close(grads["reverse"], reverse * keep)
    torch.testing.assert_close(grads["forward"], forward * keep)
    torch.testing.assert_close(grads["k1/loss"], torch.zeros_like(reverse), atol=1e-14, rtol=0)
    torch.testing.assert_close(grads["k2/loss"], reverse * keep)
    torch.testing.assert_close(grads["k3/loss"], forward * keep)
    torch.testing.assert_close(grads["k1/reward"], reverse * keep)
    # both uses together are the gradient of the exact expectation Σ_a π(a) k(a), by autograd, position by position
    for name, k in {"k2": lambda lr: 0.5 * lr**2, "k3": lambda lr: lr.exp() - 1 - lr}.items():
        total = torch.zeros_like(logits)
        for n in range(N):
            for t in range(T):
                z = logits[n, t].clone().requires_grad_(True)
                logp, logq = torch.log_softmax(z, -1), torch.log_softmax(ref_logits[n, t], -1)
                (total[n, t],) = torch.autograd.grad((logp.exp() * k(logq - logp)).sum(), z)
        torch.testing.assert_close(grads[f"{name}/loss"] + grads[f"{name}/reward"], total * keep)
    assert float(sum(g[~mask.bool()].abs().sum() for g in grads.values())) == 0.0


def test_gradient_agreement_and_table():
    target = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, 2, 2)
    grad = torch.tensor([[[3.0, 0.0], [1.0, 0.0]]])  # position 0: same direction, 3× longer; position 1: orthogonal
    cos, size = analysis.gradient_agreement(grad, target, torch.ones(1, 2))
    assert math.isclose(cos, 0.5) and math.isclose(size, (3.0 + 0.5) / 2)
    assert analysis.gradient_agreement(grad, target, torch.tensor([[1, 0]])) == (1.0, 3.0)
    assert analysis.gradient_agreement(1e-12 * target, target, torch.ones(1, 2))[0] == 0.0  # zero: no direction
    rows = analysis.kl_estimator_table(_logits(P3, Q3), _logits(Q3, P3), torch.tensor([[0, 2]]), torch.ones(1, 2))
    by_name = {row["estimator"]: row for row in rows}
    assert [row["estimator"] for row in rows] == ["k1", "k2", "k3"]
    assert by_name["k1"]["loss_size"] < 1e-12 and by_name["k1"]["loss_cos_rev"] == 0.0
    for name, use in [("k1", "reward"), ("k2", "loss")]:
        assert math.isclose(by_name[name][f"{use}_cos_rev"], 1.0) and math.isclose(by_name[name][f"{use}_size"], 1.0)
    assert math.isclose(by_name["k3"]["loss_cos_fwd"], 1.0) and by_name["k3"]["loss_cos_rev"] < 0.99


def test_kl_estimator_functions_reject_bad_input():
    logits = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="logits must be a"):
        analysis.kl_estimator_gradients(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2))
    with pytest.raises(ValueError, match="ref_logits must have the shape"):
        analysis.kl_estimator_gradients(logits, torch.zeros(1, 2, 4), torch.ones(1, 2))
    with pytest.raises(ValueError, match="mask must be a 0/1 tensor"):
        analysis.kl_estimator_gradients(logits, logits, torch.ones(2, 1))
    with pytest.raises(ValueError, match="actions must be integer token ids"):
        analysis.kl_estimator_stats(logits, logits, torch.tensor([[0, 3]]), torch.ones(1, 2))


def test_kl_estimators_on_the_tiny_model(tiny):
    """On real samples of a moved copy: the samples are the rollout's k's, and the exact KL is per_position_kl's."""
    from rlcourse.rl import loops
    model, tokenizer = tiny
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    config = loops.PPOConfig(num_prompts=2, group_size=2, max_new_tokens=8)
    prompts = loops.task_prompts(config, 0)
    batch = loops.rollout(moved, model, tokenizer, prompts, config, torch.Generator().manual_seed(2))
    logits, ref_logits = analysis.response_logits_pair(moved, model, batch.gen)
    stats = analysis.kl_estimator_stats(logits, ref_logits, batch.gen.response_ids, batch.mask)
    keep = batch.mask.bool()
    for name in analysis.KL_ESTIMATORS:
        rollout_k = analysis.KL_ESTIMATORS[name](batch.old_logprobs, batch.ref_logprobs)  # (N, T) float32
        torch.testing.assert_close(stats[name]["samples"][keep].float(), rollout_k[keep], atol=1e-4, rtol=1e-4)
    kl, _ = analysis.per_position_kl(moved, model, batch.gen)
    torch.testing.assert_close(stats["exact"].float(), kl, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- parameters


def test_parameter_movement_hand_worked(tiny):
    model, _ = tiny
    moved = copy.deepcopy(model)
    name = "model.layers.1.mlp.down_proj.bias"
    with torch.no_grad():
        param = dict(moved.named_parameters())[name]
        param.mul_(2.0)  # θ → 2θ: relative change exactly 1
    rows = analysis.parameter_movement(moved, model)
    by_name = {r["name"]: r for r in rows}
    assert math.isclose(by_name[name]["relative"], 1.0, rel_tol=1e-9)
    assert (by_name[name]["layer"], by_name[name]["part"], by_name[name]["kind"]) == ("layer 1", "mlp", "bias")
    assert all(r["relative"] == 0.0 for r in rows if r["name"] != name)
    ref_sq = by_name[name]["ref_sq"]
    total_mlp_bias = sum(r["ref_sq"] for r in rows if (r["part"], r["kind"]) == ("mlp", "bias"))
    grouped = analysis.movement_by(rows, ("part", "kind"))
    assert math.isclose(grouped["mlp", "bias"], math.sqrt(ref_sq / total_mlp_bias), rel_tol=1e-9)
    assert grouped["attention", "weight"] == 0.0


def test_movement_by_pools_squared_norms():
    rows = [{"layer": "layer 0", "delta_sq": 1.0, "ref_sq": 100.0},
            {"layer": "layer 0", "delta_sq": 3.0, "ref_sq": 300.0},
            {"layer": "layer 1", "delta_sq": 0.0, "ref_sq": 0.0}]
    assert analysis.movement_by(rows, "layer") == {"layer 0": 0.1, "layer 1": 0.0}
    with pytest.raises(ValueError, match="key must name fields"):
        analysis.movement_by(rows, "colour")


# ----------------------------------------------------------------------------- credit assignment


def _naive_variance(length, num_samples, vocab_size, dense, gamma, seed, score="sum"):
    """The same estimator, one sample and one token at a time."""
    generator = torch.Generator().manual_seed(seed)
    actions = torch.randint(vocab_size, (num_samples, length), generator=generator)
    p = 1.0 / vocab_size
    grads = []
    for s in range(num_samples):
        r = [1.0 if int(a) == 0 else 0.0 for a in actions[s]]
        g = []
        for t in range(length):
            if dense:
                weight = sum(gamma ** (k - t) * (r[k] - p) for k in range(t, length))
            elif score == "sum":
                weight = sum(r) - p * length
            else:  # verdict: pass when at least ceil(p·T) tokens are rewarded; E = binomial tail, summed by hand
                k = math.ceil(p * length)
                tail = sum(math.comb(length, j) * p ** j * (1 - p) ** (length - j) for j in range(k, length + 1))
                weight = (1.0 if sum(r) >= k else 0.0) - tail
            g += [((1.0 if int(actions[s, t]) == v else 0.0) - p) * weight for v in range(vocab_size)]
        grads.append(g)
    return float(torch.tensor(grads, dtype=torch.float64).var(0).sum())


@pytest.mark.parametrize("dense,gamma", [(False, 1.0), (True, 1.0), (True, 0.8)])
def test_toy_gradient_variance_matches_naive_loop(dense, gamma):
    fast = analysis.toy_gradient_variance(7, num_samples=60, vocab_size=3, dense=dense, gamma=gamma, seed=3)
    slow = _naive_variance(7, 60, 3, dense, gamma, seed=3)
    assert math.isclose(fast, slow, rel_tol=1e-9)


def test_toy_gradient_variance_of_the_verdict_matches_naive_loop():
    fast = analysis.toy_gradient_variance(9, num_samples=80, vocab_size=3, score="verdict", seed=4)
    slow = _naive_variance(9, 80, 3, False, 1.0, seed=4, score="verdict")
    assert math.isclose(fast, slow, rel_tol=1e-9)


def _naive_signal(length, vocab_size, score):
    """‖∇ E[R]‖² by autograd through the exact expectation (enumerate every sequence; tiny T only)."""
    theta = torch.zeros(length, vocab_size, dtype=torch.float64, requires_grad=True)
    probs = theta.softmax(-1)
    expected = 0.0
    k = math.ceil(length / vocab_size)
    for seq in itertools.product(range(vocab_size), repeat=length):
        prob = torch.stack([probs[t, a] for t, a in enumerate(seq)]).prod()
        count = sum(a == 0 for a in seq)
        expected = expected + prob * (count if score == "sum" else float(count >= k))
    (grad,) = torch.autograd.grad(expected, theta)
    return float((grad ** 2).sum())


@pytest.mark.parametrize("length,vocab_size,score", [(3, 3, "sum"), (4, 2, "verdict"), (5, 3, "verdict")])
def test_toy_gradient_signal_matches_enumeration(length, vocab_size, score):
    exact = analysis.toy_gradient_signal(length, vocab_size=vocab_size, score=score)
    assert exact == pytest.approx(_naive_signal(length, vocab_size, score), rel=1e-9)


def test_toy_policy_training_learns_and_refuses_nonsense():
    dense = analysis.toy_policy_training(20, dense=True, num_steps=60, seed=0)
    assert dense[0]["p_correct"] == pytest.approx(0.25)
    assert dense[-1]["p_correct"] > 0.6
    with pytest.raises(ValueError, match="score must be one of"):
        analysis.toy_policy_training(5, score="max")
    with pytest.raises(ValueError, match="dense rewards add up"):
        analysis.toy_policy_training(5, score="verdict", dense=True)


def test_toy_policy_training_matches_a_naive_step():
    """One step by hand: the leave-one-out advantages times log π, averaged over the batch, through Adam."""
    T, N, V, lr = 4, 3, 4, 0.05
    history = analysis.toy_policy_training(T, num_steps=2, batch_size=N, lr=lr, vocab_size=V, seed=5)
    generator = torch.Generator().manual_seed(5)
    probs = torch.full((T, V), 1.0 / V, dtype=torch.float64)
    actions = torch.multinomial(probs, N, replacement=True, generator=generator).T  # (N, T)
    R = [sum(int(a) == 0 for a in row) for row in actions]
    grad = torch.zeros(T, V, dtype=torch.float64)
    for i in range(N):
        advantage = R[i] - sum(R[j] for j in range(N) if j != i) / (N - 1)
        for t in range(T):
            onehot = torch.zeros(V, dtype=torch.float64)
            onehot[actions[i, t]] = 1.0
            grad[t] -= advantage * (onehot - probs[t]) / N  # ∇ of −A·log π(a_t), batch mean
    # Adam's first step moves each coordinate by −lr·sign(g) (where g ≠ 0)
    theta = -lr * torch.sign(grad)
    assert history[1]["p_correct"] == pytest.approx(float(theta.softmax(-1)[:, 0].mean()), rel=1e-6)


def test_toy_gradient_variance_single_token_hand_worked():
    # T = 1, V = 2, p = ½: ĝ = (onehot(a) − ½)(1[a=0] − ½) = (¼, −¼) whatever a is: zero variance
    assert analysis.toy_gradient_variance(1, num_samples=50, vocab_size=2) == pytest.approx(0.0, abs=1e-12)


def test_steps_to_threshold():
    history = [{"gold/reward": x} for x in (-1.0, 0.0, 1.0, 1.0, 1.0)]
    # trailing 2-step means: −1, −0.5, 0.5, 1, 1
    assert analysis.steps_to_threshold(history, 0.5, window=2) == 2
    assert analysis.steps_to_threshold(history, 0.9, window=2) == 3
    assert analysis.steps_to_threshold(history, 2.0, window=2) is None


def test_token_heatmap_blanks_masked_cells_and_checks_shapes():
    import matplotlib

    matplotlib.use("Agg")
    from rlcourse.classroom import plotting

    values = torch.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    ax = plotting.token_heatmap(values, mask, tokens=[["a", "b", "c"], ["d", "e", "f"]])
    shown = ax.images[0].get_array()
    assert shown[0, 0] == 1.0 and shown[0, 1] == -2.0 and shown[1, 0] == 4.0
    assert bool(shown.mask[0, 2]) and bool(shown.mask[1, 1])  # padding is not drawn
    assert ax.images[0].get_clim() == (-4.0, 4.0)  # symmetric around 0, from the visible cells
    assert [t.get_text() for t in ax.texts] == ["a", "b", "d"]
    with pytest.raises(ValueError, match="mask must have the shape"):
        plotting.token_heatmap(values, mask[:, :2])


def test_reward_to_go_kernel_matches_discounted_returns():
    from rlcourse.rl import advantages

    rewards = torch.rand(3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kernel = analysis._reward_to_go_kernel(7, 0.8)
    expected = advantages.discounted_returns(rewards, torch.ones(3, 7, dtype=torch.float64), 0.8)
    torch.testing.assert_close(rewards @ kernel.T, expected.to(torch.float64))
