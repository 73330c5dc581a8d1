"""RL with verifiable rewards: loss aggregations, clip-higher, Dr. GRPO's advantages, process
supervision, and the loop on the arithmetic task. Each checked against a naive loop over the
papers' definitions or a hand-worked case."""

import dataclasses
import math

import pytest
import torch

from rlcourse.rl import advantages as adv
from rlcourse.model import loading, policy
from rlcourse.reward import verifiers
from rlcourse.rl import loops, losses
from rlcourse.world import arith


def ragged(seed: int, B: int = 5, T: int = 7):
    g = torch.Generator().manual_seed(seed)
    per_token = torch.randn(B, T, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    per_token = torch.where(mask.bool(), per_token, torch.tensor(float("nan")))  # padding holds garbage
    return per_token, mask


BUDGET = 12  # max_new_tokens of the tests' "constant" aggregation: longer than any test response


def naive_aggregate(per_token, mask, mode, max_tokens=BUDGET):
    rows = [[float(per_token[b, t]) for t in range(per_token.shape[1]) if mask[b, t]] for b in range(per_token.shape[0])]
    if mode == "token_mean":
        flat = [x for row in rows for x in row]
        return sum(flat) / len(flat)
    if mode == "sequence_mean":
        return sum(sum(row) / len(row) for row in rows) / len(rows)
    return sum(sum(row) / max_tokens for row in rows) / len(rows)


@pytest.mark.parametrize("mode", losses.AGGREGATIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aggregations_match_a_naive_loop_and_ignore_padding(mode, seed):
    per_token, mask = ragged(seed)
    got = losses.aggregate_loss(per_token, mask, mode, max_tokens=BUDGET)
    assert math.isfinite(got.item())
    assert got.item() == pytest.approx(naive_aggregate(per_token, mask, mode), rel=1e-6, abs=1e-7)


def test_sequence_mean_weighs_a_token_by_one_over_its_response_length():
    """The length bias: the gradient on a token of a response of length L is 1/(B·L) under GRPO's
    per-response mean, 1/Σm under the token mean, 1/(B·L_max) under Dr. GRPO's constant."""
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    for mode, expected in [("sequence_mean", [1 / 8, 1 / 2]), ("token_mean", [1 / 5, 1 / 5]), ("constant", [1 / 20, 1 / 20])]:
        per_token = torch.ones(2, 4, requires_grad=True)
        losses.aggregate_loss(per_token, mask, mode, max_tokens=10).backward()
        assert per_token.grad[0, 0].item() == pytest.approx(expected[0])
        assert per_token.grad[1, 0].item() == pytest.approx(expected[1])
        assert per_token.grad[1, 1:].abs().sum().item() == 0


def test_aggregation_errors_are_one_clear_sentence():
    with pytest.raises(ValueError, match="mode must be one of token_mean, sequence_mean, constant"):
        losses.aggregate_loss(torch.zeros(2, 3), torch.ones(2, 3), "mean")
    with pytest.raises(ValueError, match="every row"):
        losses.aggregate_loss(torch.zeros(2, 3), torch.tensor([[1, 0, 0], [0, 0, 0]]), "sequence_mean")
    with pytest.raises(ValueError, match="generation budget: pass max_tokens=max_new_tokens"):
        losses.aggregate_loss(torch.zeros(2, 3), torch.ones(2, 3), "constant")
    with pytest.raises(ValueError, match=r"longest response \(3 tokens\), got 2"):
        losses.aggregate_loss(torch.zeros(2, 3), torch.ones(2, 3), "constant", max_tokens=2)


@pytest.mark.parametrize("mode", losses.AGGREGATIONS)
def test_the_loss_does_not_depend_on_the_padding_width(mode):
    """The same responses padded to 5 or to 9 columns give the same loss in every mode (Dr. GRPO divides
    by the generation budget, a constant of the run, not by this batch's width)."""
    per_token, mask = torch.tensor([[1., 2., 3.], [4., 0., 0.]]), torch.tensor([[1, 1, 1], [1, 0, 0]])
    values = []
    for width in (5, 9):
        pad = width - per_token.shape[1]
        wide = torch.cat([per_token, torch.full((2, pad), float("nan"))], dim=1)  # (2, width), garbage padding
        wide_mask = torch.cat([mask, torch.zeros(2, pad, dtype=mask.dtype)], dim=1)
        values.append(losses.aggregate_loss(wide, wide_mask, mode, max_tokens=BUDGET).item())
    assert values[0] == values[1] == pytest.approx(naive_aggregate(per_token, mask, mode))


@pytest.mark.parametrize("eps_high", [None, 0.2, 0.28, 0.5])
@pytest.mark.parametrize("mode", losses.AGGREGATIONS)
def test_clip_higher_matches_a_naive_loop(eps_high, mode):
    """DAPO's clip-higher: clip(ρ, 1 − ε_low, 1 + ε_high), per token the larger of the two losses."""
    g = torch.Generator().manual_seed(3)
    logprobs, old = -torch.rand(4, 6, generator=g) * 3, -torch.rand(4, 6, generator=g) * 3
    A = torch.randn(4, generator=g)
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [1] * 5 + [0], [1] + [0] * 5])
    loss, stats = losses.ppo_clip_loss(logprobs, old, A, mask, 0.2, eps_high, mode, max_tokens=BUDGET)
    high = 0.2 if eps_high is None else eps_high
    per_token = torch.zeros(4, 6)
    clipped_count = 0
    for b in range(4):
        for t in range(6):
            if mask[b, t]:
                rho = math.exp(logprobs[b, t] - old[b, t])
                u, c = -A[b].item() * rho, -A[b].item() * min(max(rho, 0.8), 1 + high)
                per_token[b, t] = max(u, c)
                clipped_count += c > u
    assert loss.item() == pytest.approx(naive_aggregate(per_token, mask, mode), rel=1e-5, abs=1e-6)
    assert stats["clipfrac"].item() == pytest.approx(clipped_count / int(mask.sum()))


def test_dr_grpo_advantages_are_the_centred_rewards():
    rewards = torch.tensor([1., 0., 0., 0., 1., 1., 1., 1.])
    torch.testing.assert_close(adv.group_advantages(rewards, 4, scale=False),
                               torch.tensor([0.75, -0.25, -0.25, -0.25, 0., 0., 0., 0.]))
    # with the std: one right answer in four is pushed up by 0.75 / 0.5 = 1.5, not 0.75
    assert adv.group_advantages(rewards, 4)[0].item() == pytest.approx(0.75 / (0.5 + 1e-4))
    with pytest.raises(TypeError, match="scale must be True"):
        adv.group_advantages(rewards, 4, scale="no")


def naive_process_advantages(step_rewards, step_mask, mask, G, eps=1e-4):
    N, T = step_rewards.shape
    out = torch.zeros(N, T)
    for g0 in range(0, N, G):
        R = [float(step_rewards[i, t]) for i in range(g0, g0 + G) for t in range(T) if step_mask[i, t] and mask[i, t]]
        mean = sum(R) / len(R)
        std = math.sqrt(sum((r - mean) ** 2 for r in R) / max(1, len(R) - 1))
        for i in range(g0, g0 + G):
            for t in range(T):
                if mask[i, t]:
                    out[i, t] = sum((float(step_rewards[i, s]) - mean) / (std + eps)
                                    for s in range(t, T) if step_mask[i, s] and mask[i, s])
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_process_supervision_advantages_match_the_papers_definition(seed):
    """Shao et al. 2024 §4.1.3: normalise all step rewards of a group, A_t = Σ of those of steps ending at or after t."""
    g = torch.Generator().manual_seed(seed)
    N, T, G = 6, 9, 3
    mask = (torch.arange(T)[None] < torch.randint(3, T + 1, (N,), generator=g)[:, None]).long()
    step_mask = (torch.rand(N, T, generator=g) < 0.4).long() * mask
    step_mask[torch.arange(N), mask.sum(1) - 1] = 1  # every response ends a step at its last token
    step_rewards = torch.randint(0, 2, (N, T), generator=g).float()
    got = adv.process_group_advantages(step_rewards, step_mask, mask, G)
    torch.testing.assert_close(got, naive_process_advantages(step_rewards, step_mask, mask, G), atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def math_policy():
    return loading.load_math_policy()


def generation_of(tokenizer, prompts, responses, T=12):
    """A Generation holding exactly these responses (EOS after each, then padding)."""
    rows = [tokenizer.convert_tokens_to_ids(r.split()) + [tokenizer.eos_token_id] for r in responses]
    response_ids = torch.tensor([row + [tokenizer.pad_token_id] * (T - len(row)) for row in rows])
    response_mask = (torch.arange(T)[None] < torch.tensor([len(r) for r in rows])[:, None]).long()
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    return policy.Generation(enc["input_ids"], enc["attention_mask"], response_ids, response_mask,
                             torch.zeros(len(rows), T), list(prompts), list(responses), tokenizer.eos_token_id)


def test_step_rewards_land_on_each_steps_last_token(math_policy):
    _, tokenizer = math_policy
    prompts = ["4 + 3 - 2 ="] * 3
    responses = ["4 + 3 = 8 ; 8 - 2 = 6 ; answer 6",  # a slip in step 1, carried on correctly
                 "4 + 3 = 7 ; 7 - 2 = 5",  # right steps, no answer
                 "4 + 3 = 7 ; 7 - 2 = 5 ; answer 5"]
    rewards, ends = verifiers.arith_step_rewards(generation_of(tokenizer, prompts, responses, T=16), tokenizer)
    # words 0-4 "4 + 3 = 8", 5 ";", 6-10 "8 - 2 = 6", 11 ";", 12-13 "answer 6", then EOS at 14
    assert ends[0].nonzero().flatten().tolist() == [4, 10, 13]
    assert rewards[0, [4, 10, 13]].tolist() == [0.0, 1.0, 1.0]
    # no answer: 0 at the last token (EOS, position 11) on top of the two valid steps
    assert ends[1].nonzero().flatten().tolist() == [4, 10, 11]
    assert rewards[1, [4, 10, 11]].tolist() == [1.0, 1.0, 0.0]
    assert rewards[2, [4, 10, 13]].tolist() == [1.0, 1.0, 1.0]


def test_answer_reward_reads_the_prompt_and_the_final_answer():
    assert arith.answer_reward(["4 + 3 - 2 = 4 + 3 = 8 ; 8 - 2 = 6 ; answer 6", "4 + 3 - 2 = answer 5",
                                "9 - 9 = 9 - 9 = 0 ; answer 0 ; answer 1"]).tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("options", [dict(), dict(process=True), dict(scale_rewards=False, loss_aggregation="constant"),
                                     dict(loss_aggregation="sequence_mean", clip_eps_high=0.28)])
def test_grpo_runs_on_the_arithmetic_task(options):
    config = loops.GRPOConfig(task="arith", num_steps=2, num_prompts=4, group_size=4, max_new_tokens=arith.MAX_RESPONSE_TOKENS,
                              seed=0, **options)
    out = loops.train(config, progress=False, device="cpu")
    for m in out["history"]:
        assert 0 <= m["arith/correct"] <= 1 and m["arith/correct"] == pytest.approx(m["objective/scores"])
        assert math.isfinite(m["loss/policy_avg"])


@pytest.mark.parametrize("mode", losses.AGGREGATIONS)
def test_grpo_aggregates_its_kl_term_like_its_policy_term(mode):
    """GRPO's per-token loss is ℓ_t + β·k3_t, averaged ONE way: under the per-response mean or the constant
    the KL term must be weighed per response too, not by the token mean (checked against a naive loop)."""
    g = torch.Generator().manual_seed(5)
    config = loops.GRPOConfig(kl_coef=0.3, loss_aggregation=mode, max_new_tokens=BUDGET)
    mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 5 + [0], [1] + [0] * 5])
    old, ref = -torch.rand(4, 6, generator=g) * 3, -torch.rand(4, 6, generator=g) * 3
    logprobs = old + 0.1 * torch.randn(4, 6, generator=g)
    A = torch.randn(4, generator=g)
    loss, _ = loops.policy_loss(config, {"mask": mask, "advantages": A, "old_logprobs": old, "ref_logprobs": ref},
                                logprobs, torch.zeros(4, 6))
    per_token = torch.zeros(4, 6)
    for b in range(4):
        for t in range(6):
            if mask[b, t]:
                rho, log_r = math.exp(logprobs[b, t] - old[b, t]), float(ref[b, t] - logprobs[b, t])
                ppo = max(-A[b].item() * rho, -A[b].item() * min(max(rho, 0.8), 1.2))
                per_token[b, t] = ppo + 0.3 * (math.exp(log_r) - 1 - log_r)
    assert loss.item() == pytest.approx(naive_aggregate(per_token, mask, mode), rel=1e-5, abs=1e-6)


def test_arith_options_are_refused_where_they_cannot_apply():
    with pytest.raises(ValueError, match="task 'arith'"):
        loops.train(loops.GRPOConfig(num_steps=1, process=True), progress=False)
    with pytest.raises(ValueError, match="task must be one of"):
        loops.train(loops.GRPOConfig(num_steps=1, task="math"), progress=False)
    with pytest.raises(ValueError, match="loss_aggregation must be one of"):
        loops.train(loops.GRPOConfig(num_steps=1, loss_aggregation="mean"), progress=False)


# ----------------------------------------------------------------------------- learned verifiers, best-of-N

from rlcourse.reward import verifiers  # noqa: E402


def handmade_samples():
    """2 problems × 4 samples with known answers, features chosen by hand."""
    p1, p2 = arith.Problem((4, 3), ("+",)), arith.Problem((9, 1), ("-",))
    texts = ["4 + 3 = 7 ; answer 7", "4 + 3 = 8 ; answer 8", "answer 8", "4 + 3 = 7 ; answer 7",
             "9 - 1 = 7 ; answer 7", "9 - 1 = 7 ; answer 7", "9 - 1 = 8 ; answer 8", "nonsense"]
    correct = torch.tensor([arith.is_correct(p, t) for p, t in zip([p1] * 4 + [p2] * 4, texts)])
    T = 8
    mask = torch.zeros(8, T, dtype=torch.bool)
    for i, t in enumerate(texts):
        mask[i, : len(t.split()) + 1] = True
    g = torch.Generator().manual_seed(0)
    step_mask = torch.zeros(8, T)
    step_mask[:, 2] = 1
    step_mask[torch.arange(8), mask.sum(1) - 1] = 1
    return verifiers.Samples([p1, p2], 4, texts, correct, mask, torch.randint(0, 2, (8, T), generator=g).float(),
                             step_mask * mask, torch.randn(8, T, 3, generator=g))


def test_best_of_n_majority_and_oracle_by_hand():
    s = handmade_samples()
    assert s.correct.tolist() == [True, False, False, True, False, False, True, False]
    scores = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.5, 0.4, 0.9, 0.1])
    # N = 2: sets (0,1)->1 wrong, (2,3)->3 right, (4,5)->4 wrong, (6,7)->6 right: 2/4
    assert verifiers.best_of_n_accuracy(scores, s, 2) == pytest.approx(0.5)
    assert verifiers.best_of_n_accuracy(scores, s, 4) == pytest.approx(0.5)  # picks 1 (wrong) and 6 (right)
    assert verifiers.best_of_n_accuracy(scores, s, 1) == pytest.approx(3 / 8)
    assert verifiers.oracle_accuracy(s, 2) == pytest.approx(3 / 4)  # (4,5) has none right
    # majority of 4: problem 1 answers 7, 8, 8, 7 -> 8 reached 2 first (wrong); problem 2: 7, 7, 8, None -> 7 (wrong)
    assert verifiers.majority_vote_accuracy(s, 4) == 0.0
    # majority of 2: (7, 8) -> 7 right, (8, 7) -> 8 wrong, (7, 7) -> 7 wrong, (8, None) -> 8 right
    assert verifiers.majority_vote_accuracy(s, 2) == 0.5
    with pytest.raises(ValueError, match="N must divide"):
        verifiers.best_of_n_accuracy(scores, s, 3)


def test_process_features_pool_each_steps_tokens_and_scores_multiply():
    s = handmade_samples()
    x, ends = verifiers.process_features(s)
    rows = []
    for i in range(8):
        start = 0
        for t in range(8):
            if ends[i, t]:
                tokens = s.token_features[i, start : t + 1]
                rows.append(torch.cat([tokens.min(0).values, tokens.mean(0)]))
                start = t + 1
    torch.testing.assert_close(x, torch.stack(rows))
    prm = verifiers.Verifier(x)
    with torch.no_grad():
        prm.linear.weight.normal_(generator=torch.Generator().manual_seed(1))
    expected = torch.ones(8)
    k = 0
    for i in range(8):
        for t in range(8):
            if ends[i, t]:
                expected[i] *= torch.sigmoid(prm(x[k : k + 1]))[0]
                k += 1
    torch.testing.assert_close(verifiers.process_scores(prm, s), expected)


def test_learned_verifiers_rank_right_answers_above_wrong_ones(math_policy):
    model, tokenizer = math_policy
    train = verifiers.sample(model, tokenizer, arith.sample_problems(48, seed=1), 8, seed=1)
    for kind, score in [("outcome", verifiers.outcome_scores), ("process", verifiers.process_scores)]:
        v = verifiers.train_verifier(train, kind)
        s = score(v, train)
        right, wrong = s[train.correct], s[~train.correct]
        auc = (right[:, None] > wrong[None, :]).float().mean().item()
        assert auc > 0.75, (kind, auc)


def test_grpo_without_kl_skips_the_reference_pass_and_samples_the_same(math_policy):
    """β = 0: GRPO's loss never reads π_ref, so ``train`` skips its forward pass (as TRL loads no reference)."""
    model, tokenizer = math_policy
    config = loops.GRPOConfig(task="arith", num_prompts=4, group_size=2, max_new_tokens=20, kl_coef=0.0)
    prompts = loops.task_prompts(config, 0)
    with_ref = loops.rollout(model, model, tokenizer, prompts, config, torch.Generator().manual_seed(0))
    without = loops.rollout(model, None, tokenizer, prompts, config, torch.Generator().manual_seed(0))
    assert without.ref_logprobs is None and torch.equal(with_ref.gen.response_ids, without.gen.response_ids)
    torch.testing.assert_close(with_ref.old_logprobs, without.old_logprobs)
    with pytest.raises(ValueError, match="needs the reference log-probs"):
        loops.score(without, arith.answer_reward, config, kl_coef=0.1)
    history = loops.train(dataclasses.replace(config, num_steps=2), progress=False, device="cpu")["history"]
    assert "objective/kl" not in history[0] and "loss/policy_avg" in history[0]
    assert "objective/kl" in loops.train(dataclasses.replace(config, num_steps=1, kl_coef=0.02), progress=False,
                                         device="cpu")["history"][0]
