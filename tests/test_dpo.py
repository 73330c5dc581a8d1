"""rlcourse.rl.dpo: best-of-N against exact enumeration, DPO log-probs against a naive loop, DPO training."""

import copy
import math

import pytest
import torch

from rlcourse.reward import reward_model
from rlcourse.rl import dpo, losses
from rlcourse.world import rewards


# ----------------------------------------------------------------------------- best-of-N


def test_best_of_n_kl_bound_hand_worked():
    assert dpo.best_of_n_kl_bound(1) == 0.0
    assert math.isclose(dpo.best_of_n_kl_bound(4), math.log(4) - 0.75)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        dpo.best_of_n_kl_bound(0)


@pytest.mark.parametrize("n", [2, 4, 16])
def test_best_of_n_kl_bound_matches_exact_kl_of_enumerated_distribution(n):
    # π uniform over M outcomes with distinct rewards (ranked 1..M): best-of-n picks rank i with
    # probability (i/M)^n − ((i−1)/M)^n; its exact KL to π tends to the bound as M grows.
    M = 20_000
    i = torch.arange(1, M + 1, dtype=torch.float64)
    p_bon = (i / M) ** n - ((i - 1) / M) ** n
    kl = float((p_bon * (p_bon * M).log()).sum())
    assert math.isclose(kl, dpo.best_of_n_kl_bound(n), rel_tol=1e-3)


@pytest.mark.parametrize("n", [2, 4, 16])
def test_best_of_n_kl_stays_below_the_bound_for_few_distinct_responses(n):
    """The bound is a limit: with M distinct responses the exact KL is smaller, and grows towards it with M."""
    kls = []
    for M in (2, 5, 50, 500):
        i = torch.arange(1, M + 1, dtype=torch.float64)
        p_bon = (i / M) ** n - ((i - 1) / M) ** n
        kls.append(float((p_bon * (p_bon * M).log()).sum()))
    assert all(kl < dpo.best_of_n_kl_bound(n) for kl in kls)
    assert kls == sorted(kls)


def test_best_of_n_indices_matches_naive_loop():
    scores = torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    for n in (1, 3, 8):
        expected = [max(range(n), key=lambda j: float(scores[b, j])) for b in range(20)]
        assert dpo.best_of_n_indices(scores, n).tolist() == expected
    with pytest.raises(ValueError, match="n must be an int in"):
        dpo.best_of_n_indices(scores, 9)


def test_best_of_n_curve_picks_by_proxy(tiny):
    model, tokenizer = tiny
    length_proxy = lambda texts: torch.tensor([float(len(t.split())) for t in texts])  # noqa: E731
    rows = dpo.best_of_n_curve(model, tokenizer, ["the film was", "i think"], [1, 4], length_proxy,
                               max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    assert [r["n"] for r in rows] == [1, 4]
    assert rows[1]["proxy"] >= rows[0]["proxy"]  # more samples can only help the proxy
    assert rows[1]["proxy"] == pytest.approx(float(length_proxy(rows[1]["texts"]).mean()))
    assert rows[1]["gold"] == pytest.approx(float(rewards.gold_reward(rows[1]["texts"]).mean()))


# ----------------------------------------------------------------------------- DPO


def test_response_logprobs_match_unpadded_naive_sum(tiny):
    model, tokenizer = tiny
    prompts = ["the film was", "long ago , in"]
    texts = ["the film was great .", "long ago , in a small village there lived a king ."]
    with torch.no_grad():
        batched = dpo.response_logprobs(model, tokenizer, prompts, texts)
    for b, (prompt, text) in enumerate(zip(prompts, texts)):
        prompt_ids = tokenizer(prompt).input_ids
        response_ids = tokenizer(text[len(prompt):].strip(), add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        ids = torch.tensor([prompt_ids + response_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].double(), -1)
        expected = sum(float(logp[len(prompt_ids) - 1 + t, tok]) for t, tok in enumerate(response_ids))
        assert math.isclose(float(batched[b]), expected, rel_tol=1e-4)


def test_truncated_responses_get_no_eos(tiny):
    """A response cut off at max_new_tokens must not be taught to end there (issue 12, item 10)."""
    model, tokenizer = tiny
    prompts, texts = ["the film was", "the film was"], ["the film was great .", "the film was great and"]
    enc = dpo.encode_pairs(tokenizer, prompts, texts, truncated=frozenset({texts[1]}))
    eos = tokenizer.eos_token_id
    finished_row, cut_row = enc["input_ids"][0], enc["input_ids"][1]
    assert int(finished_row[-1]) == eos and int(enc["response_mask"][0, -1]) == 1  # the EOS is a graded token
    assert eos not in cut_row[enc["attention_mask"][1].bool()].tolist()[1:]
    n_words = len("great and".split())
    assert int(enc["response_mask"][1].sum()) == n_words  # the response's words, no EOS
    with torch.no_grad():
        cut = dpo.response_logprobs(model, tokenizer, prompts[1:], texts[1:], truncated=frozenset({texts[1]}))
        whole = dpo.response_logprobs(model, tokenizer, prompts[1:], texts[1:])
        ids = torch.tensor([tokenizer(texts[1]).input_ids + [eos]])
        logp = torch.log_softmax(model(ids).logits[0].double(), -1)
    # the difference is exactly the log-prob of an EOS after the cut-off text
    assert math.isclose(float(whole - cut), float(logp[-2, eos]), rel_tol=1e-4, abs_tol=1e-5)


def test_make_preference_dataset_records_truncated_responses(tiny):
    model, tokenizer = tiny
    pairs = reward_model.make_preference_dataset(model, tokenizer, ["the film was"] * 6, seed=0,
                                                 responses_per_prompt=4, max_new_tokens=3)
    texts = set(pairs.chosen) | set(pairs.rejected)
    assert pairs.truncated and pairs.truncated <= texts
    # one word per token: a response that ended has its EOS within the budget, so fewer than 3 words
    assert pairs.truncated == {t for t in texts if len(t.split()) - len("the film was".split()) == 3}
    assert pairs[:2].truncated == pairs.truncated and pairs.split(0.5)[1].truncated == pairs.truncated


def test_response_logprobs_rejects_text_without_its_prompt(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="does not start with its prompt"):
        dpo.response_logprobs(model, tokenizer, ["the film was"], ["a great film ."])


def _toy_dataset():
    prompts = ["the film was", "the plot was", "i think the acting was", "the music was"] * 2
    chosen = [f"{p} great ." for p in prompts]
    rejected = [f"{p} awful ." for p in prompts]
    return reward_model.PreferenceDataset(prompts, chosen, rejected, rewards.gold_reward(chosen), rewards.gold_reward(rejected))


def test_train_dpo_starts_at_log2_and_learns_the_preference(tiny):
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    ref = copy.deepcopy(model)
    data = _toy_dataset()
    history = dpo.train_dpo(dpo.DPOConfig(lr=1e-3, num_epochs=5, batch_size=8, beta=0.5), model, tokenizer, data,
                            ref_model=ref, progress=False)
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # π = π_ref at the first step
    assert history[-1]["loss"] < 0.5 * math.log(2)
    # the trained policy's implicit rewards rank the pairs like the labels, computed independently
    with torch.no_grad():
        loss, stats = losses.dpo_loss(dpo.response_logprobs(model, tokenizer, data.prompts, data.chosen),
                                      dpo.response_logprobs(model, tokenizer, data.prompts, data.rejected),
                                      dpo.response_logprobs(ref, tokenizer, data.prompts, data.chosen),
                                      dpo.response_logprobs(ref, tokenizer, data.prompts, data.rejected), 0.5)
    assert float(stats["rewards/accuracies"]) == 1.0


def test_train_dpo_rejects_bad_input(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="config must be a DPOConfig"):
        dpo.train_dpo({"beta": 0.1}, model, tokenizer, _toy_dataset())
    with pytest.raises(ValueError, match="non-empty PreferenceDataset"):
        dpo.train_dpo(dpo.DPOConfig(), model, tokenizer, [])
