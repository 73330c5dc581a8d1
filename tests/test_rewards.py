"""rewards.py and reward_model.py against hand-worked cases, naive re-implementations and the figures it promises.

The naive references use Python floats and ``math`` and follow the formulas in the module
docstring, not the vectorised code.
"""

import doctest
import json
import math
import random
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

import rlcourse.reward.reward_model as reward_model_module
import rlcourse.world.rewards as rewards_module
from rlcourse.world import grammar
from rlcourse.reward.reward_model import (PreferenceDataset, bradley_terry_loss, label_preferences, load_reward_model,
                                          make_preference_dataset, pair_rewards, preference_accuracy, reward_scores,
                                          calibration, spearman_correlation, train_reward_model)
from rlcourse.world.rewards import (best_reachable_gold_reward, gold_response_token_rewards, gold_reward,
                                    gold_reward_terms, gold_token_rewards)


def test_doctests():
    for module in (rewards_module, reward_model_module):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ---------------------------------------------------------------------------
# Bradley–Terry loss
# ---------------------------------------------------------------------------


def naive_bradley_terry(chosen, rejected):
    """−mean log σ(r_c − r_r), one float at a time, straight from the definition."""
    terms = [-math.log(1.0 / (1.0 + math.exp(-(c - r)))) for c, r in zip(chosen, rejected)]
    return sum(terms) / len(terms)


def test_bradley_terry_hand_cases():
    assert float(bradley_terry_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(math.log(2))
    # margin 1: log(1 + e^{-1}) = 0.31326; margin -1: log(1 + e) = 1.31326
    assert float(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]))) == pytest.approx(0.3132617)
    assert float(bradley_terry_loss(torch.tensor([0.0]), torch.tensor([1.0]))) == pytest.approx(1.3132617)
    # only the difference matters
    shifted = bradley_terry_loss(torch.tensor([101.0, 7.0]), torch.tensor([100.0, 9.0]))
    assert_close(shifted, bradley_terry_loss(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0])))


def test_bradley_terry_matches_naive():
    g = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(50, generator=g, dtype=torch.float64) * 3, torch.randn(50, generator=g, dtype=torch.float64) * 3
    got = bradley_terry_loss(chosen, rejected)
    assert float(got) == pytest.approx(naive_bradley_terry(chosen.tolist(), rejected.tolist()), rel=1e-12)


def test_bradley_terry_is_stable_at_extreme_margins():
    chosen = torch.tensor([1000.0, -1000.0], requires_grad=True)
    loss = bradley_terry_loss(chosen, torch.zeros(2))
    assert loss.item() == pytest.approx(500.0)  # (0 + 1000) / 2
    loss.backward()
    assert torch.isfinite(chosen.grad).all()
    assert_close(chosen.grad, torch.tensor([0.0, -0.5]))  # −σ(r_r − r_c)/B


@pytest.mark.parametrize(
    "chosen, rejected, match",
    [
        (torch.zeros(3), torch.zeros(2), "pair up"),
        (torch.zeros(0), torch.zeros(0), "at least one pair"),
        (torch.zeros(2, 2), torch.zeros(2, 2), "1-D float tensor"),
        (torch.zeros(2, dtype=torch.long), torch.zeros(2), "1-D float tensor"),
    ],
)
def test_bradley_terry_rejects_bad_input(chosen, rejected, match):
    with pytest.raises(ValueError, match=match):
        bradley_terry_loss(chosen, rejected)


# ---------------------------------------------------------------------------
# The gold reward
# ---------------------------------------------------------------------------


def naive_gold(text):
    """The documented formula, written again from scratch."""
    tokens = text.split()
    if not tokens:
        return -1.0
    S = sum(grammar.token_sentiment(tokens))
    bigrams = list(zip(tokens, tokens[1:]))
    repeated = sum(1 for i, b in enumerate(bigrams) if b in bigrams[:i])
    fraction = repeated / len(bigrams) if bigrams else 0.0
    return math.tanh(S / 2) - (0.0 if grammar.is_grammatical(text) else 1.0) - fraction


def varied_texts(n=60, seed=0):
    """Grammar samples and broken variants: truncated, shuffled, repeated, empty."""
    rng = random.Random(seed)
    texts = grammar.sample_reviews(n, seed=seed) + grammar.sample_stories(5, seed=seed)
    broken = []
    for text in texts[:20]:
        tokens = text.split()
        broken.append(" ".join(tokens[: rng.randint(1, len(tokens))]))  # cut off
        broken.append(" ".join(rng.sample(tokens, len(tokens))))  # word salad
        broken.append(f"{text} {text}")  # said twice
    return texts + broken + ["", "great", "the film was great . great great great"]


def test_gold_reward_matches_naive_formula():
    texts = varied_texts()
    expected = torch.tensor([naive_gold(t) for t in texts], dtype=torch.float32)
    assert_close(gold_reward(texts), expected)
    for text in texts[:10]:
        terms = gold_reward_terms(text)
        assert terms["total"] == pytest.approx(terms["sentiment"] + terms["fluency"] + terms["repetition"])


def test_gold_reward_orders_hand_written_reviews():
    positive = "the film was great ."
    neutral = "the film was okay ."
    negative = "the film was awful ."
    r_pos, r_neu, r_neg = gold_reward([positive, neutral, negative]).tolist()
    assert r_pos > r_neu > r_neg
    assert r_pos == pytest.approx(math.tanh(0.5), abs=1e-6)  # S = 1 (great)
    # negation flips and halves: "not good" is mildly negative, "not boring" mildly positive
    not_good, not_boring = gold_reward(["the film was not good .", "the film was not boring ."]).tolist()
    assert not_good == pytest.approx(math.tanh(-0.15), abs=1e-6)  # S = −0.5 · 0.6
    assert r_neg < not_good < r_neu < not_boring < r_pos
    # more praise pays, but saturates below 1
    glowing = "the film was truly brilliant and very moving . i adored the script ."
    assert grammar.is_grammatical(glowing)
    assert r_pos < float(gold_reward([glowing])) < 1.0


def test_gold_reward_punishes_broken_and_salad_text():
    salad = "great amazing superb brilliant perfect wonderful masterpiece"
    assert not grammar.is_grammatical(salad)
    unfinished = "the film was truly brilliant and"
    scores = gold_reward([salad, unfinished, "", "the film was okay .", "the film was good ."]).tolist()
    assert scores[0] < 0 < scores[3]  # seven glowing words, yet below a dull complete review
    assert scores[1] < 0  # a cut-off response loses to a dull complete one
    assert scores[2] == -1.0
    assert max(scores[:3]) < scores[3] < scores[4]
    positive_reviews = [r for r in grammar.sample_reviews(300, seed=2) if sum(grammar.token_sentiment(r.split())) > 0]
    beaten_by = float((gold_reward(positive_reviews) > scores[0]).float().mean())
    assert beaten_by > 0.95  # nearly every fluent positive review scores higher (a few lose to repetition)


def test_gold_reward_punishes_repetition():
    once = "the film was great ."
    twice = "the film was great . the film was great ."
    thrice = "the film was great . the film was great . the film was great ."
    assert all(map(grammar.is_grammatical, [once, twice, thrice]))
    r1, r2, r3 = gold_reward([once, twice, thrice]).tolist()
    assert r1 > r2 and r1 > r3
    assert gold_reward_terms(twice)["repetition"] == pytest.approx(-4 / 9)  # 4 of 9 bigrams seen before


def test_best_reachable_gold_reward_is_near_one():
    best = best_reachable_gold_reward()
    assert 0.95 < best < 1.0
    assert float(gold_reward(grammar.sample_reviews(2000, seed=5)).max()) <= best + 0.01


# ---------------------------------------------------------------------------
# Per-token gold rewards
# ---------------------------------------------------------------------------


def test_token_rewards_sum_to_the_sequence_reward():
    texts = varied_texts(seed=1)
    token_rewards = gold_token_rewards(texts)  # (B, T)
    assert token_rewards.shape == (len(texts), max(len(t.split()) for t in texts) + 1)  # the words, then <eos>
    assert_close(token_rewards.double().sum(1), gold_reward(texts).double(), atol=1e-6, rtol=0)
    cut = gold_token_rewards(texts, finished=False)  # cut off: no <eos>, the last word pays
    assert cut.shape == (len(texts), max(len(t.split()) for t in texts))
    assert_close(cut.double().sum(1), gold_reward(texts).double(), atol=1e-6, rtol=0)


def test_token_rewards_hand_case():
    # tokens: the film was not good . great  ("great" cannot start the next sentence)
    text = "the film was not good . great"
    r = gold_token_rewards([text], num_tokens=9)[0]
    k = grammar.grammatical_prefix_length(text.split())
    assert k == 6  # "great" cannot start a sentence
    # potential-based shaping: each token earns the change it makes to tanh(S/2) of the prefix
    expected = torch.zeros(9)
    expected[4] = math.tanh(-0.3 / 2)  # "not good": S goes 0 -> -0.3
    expected[6] = math.tanh((-0.3 + 1.0) / 2) - math.tanh(-0.3 / 2) - 1.0  # "great": S -> 0.7, and the grammar breaks
    assert_close(r, expected)


def test_token_rewards_are_causal():
    """Changing token k never changes the reward of an earlier token (Ng et al. 1999 shaping reads prefixes only)."""
    rng = random.Random(0)
    words = ["the", "film", "was", "not", "very", "good", "great", "awful", ".", "and", "it", "i", "loved", "dull"]
    texts = varied_texts(seed=2)
    checked = 0
    for text in texts:
        tokens = text.split()
        if len(tokens) < 3:
            continue
        k = rng.randrange(1, len(tokens))
        changed = tokens[:k] + [rng.choice([w for w in words if w != tokens[k]])] + tokens[k + 1:]
        before = gold_token_rewards([text], num_tokens=len(tokens) + 1)[0]
        after = gold_token_rewards([" ".join(changed)], num_tokens=len(tokens) + 1)[0]
        assert torch.equal(before[:k], after[:k]), (text, " ".join(changed), k)
        assert_close(after.double().sum(), gold_reward([" ".join(changed)]).double()[0], atol=1e-6, rtol=0)
        checked += 1
    assert checked >= 10


def test_no_reward_changes_when_a_later_token_does_eos_included():
    """r_t reads tokens ≤ t only, and <eos> is a token: ending the text after k words (<eos> at position k)
    instead of going on, or putting another word at k, leaves r_0 … r_{k−1} exactly as they were. The −1 of a
    text that stops unfinished is paid by the <eos> that stops it, never by the word before (issue 24)."""
    rng = random.Random(3)
    words = ["the", "film", "was", "not", "very", "good", "great", "awful", ".", "and", "it", "i", "loved", "dull"]
    checked = unfinished = 0
    for text in varied_texts(seed=4):
        tokens = text.split()
        n = len(tokens)
        full = gold_token_rewards([text], num_tokens=n + 1)[0]  # (n + 1,) the words, then <eos>
        for k in range(1, n):
            ended = " ".join(tokens[:k])  # the same first k words, then <eos> instead of tokens[k]
            other = tokens[:k] + [rng.choice([w for w in words if w != tokens[k]])] + tokens[k + 1:]
            for variant in (ended, " ".join(other)):
                r = gold_token_rewards([variant], num_tokens=n + 1)[0]
                assert torch.equal(r[:k], full[:k]), (text, variant, k)
                assert_close(r.double().sum(), gold_reward([variant]).double()[0], atol=1e-6, rtol=0)
            unfinished += gold_reward_terms(ended)["fluency"] < 0 and grammar.grammatical_prefix_length(tokens[:k]) == k
            checked += 1
    assert checked >= 500 and unfinished >= 100  # many prefixes stop unfinished: their −1 must sit on <eos>


def test_response_rewards_never_change_when_a_later_token_does_eos_included():
    """The same for the dense rewards of sampled responses: a response that stops with <eos> after k words
    gets the same r_0 … r_{k−1} as one that goes on (``finished`` inferred from the length, as for a batch)."""
    rng = random.Random(5)
    checked = 0
    for text in grammar.sample_stories(6, seed=1) + grammar.sample_reviews(6, seed=1):
        words = text.split()
        P = rng.randint(1, 4)
        prompt, tokens = " ".join(words[:P]), words[P:]  # the prompt, and the response that continues it
        T = len(tokens) + 1
        full = gold_response_token_rewards([prompt], [" ".join(tokens)], num_tokens=T)[0]  # <eos> at len(tokens)
        for k in range(1, len(tokens)):
            ended = gold_response_token_rewards([prompt], [" ".join(tokens[:k])], num_tokens=T)[0]  # <eos> at k
            assert torch.equal(ended[:k], full[:k]), (prompt, tokens, k)
            assert_close(ended.double().sum(), gold_reward([f"{prompt} {' '.join(tokens[:k])}"]).double()[0],
                         atol=1e-6, rtol=0)
            checked += 1
    assert checked >= 50


def test_the_unfinished_penalty_sits_on_eos_or_on_the_last_word_of_a_cut_text():
    assert gold_token_rewards(["the plot was"]).tolist() == [[0.0, 0.0, 0.0, -1.0]]  # <eos> pays
    assert gold_token_rewards(["the plot was"], finished=False).tolist() == [[0.0, 0.0, -1.0]]  # cut: "was" pays
    assert gold_token_rewards([""]).tolist() == [[-1.0]]
    r = gold_response_token_rewards(["the plot was", "the plot was"], ["dull", "dull"], num_tokens=2,
                                    finished=[True, False])
    dull = math.tanh(grammar.token_sentiment(["dull"])[0] / 2)  # "dull" lowers tanh(S/2) when it is said
    assert_close(r, torch.tensor([[dull, -1.0], [dull - 1.0, 0.0]]))
    with pytest.raises(ValueError, match="finished must be a bool or 2 bools"):
        gold_token_rewards(["a", "b"], finished=[True])
    with pytest.raises(ValueError, match=r"1 tokens and <eos>, more than num_tokens=1"):
        gold_response_token_rewards(["the plot was"], ["dull"], num_tokens=1, finished=[True])


def test_the_old_non_causal_split_would_fail_the_causality_check():
    # r_t = s_t·tanh(S/2)/S (the former scheme) gives "good" a share that depends on a later word
    share = lambda S: math.tanh(S / 2) / S  # noqa: E731
    assert share(0.6) * 0.6 != pytest.approx(share(0.6 + 1.0) * 0.6)
    r_short = gold_token_rewards(["the film was good ."], num_tokens=8)[0]
    r_long = gold_token_rewards(["the film was good and great ."], num_tokens=8)[0]
    assert float(r_short[3]) == float(r_long[3]) == pytest.approx(math.tanh(0.6 / 2))


def test_token_rewards_reject_a_short_width():
    with pytest.raises(ValueError, match="num_tokens=2 is shorter"):
        gold_token_rewards(["the film was great ."], num_tokens=2)


def test_response_token_rewards_align_with_responses():
    prompts = ["the film was", "the plot was", "the film was", "", "the film was great"]
    responses = ["great .", "clever . i loved it .", "", "the plot was dull .", "."]
    T = 8
    r = gold_response_token_rewards(prompts, responses, num_tokens=T)  # (B, T)
    full = [f"{p} {x}".strip() for p, x in zip(prompts, responses)]
    assert all(map(grammar.is_grammatical, full[:2] + full[3:]))
    assert r.shape == (5, T)
    assert_close(r.double().sum(1), gold_reward(full).double(), atol=1e-6, rtol=0)
    # "clever . i loved it .": clever (position 0) raises tanh(S/2) from 0 to tanh(0.3), loved (3) to tanh(0.75)
    assert_close(r[1], torch.tensor([math.tanh(0.3), 0, 0, math.tanh(0.75) - math.tanh(0.3), 0, 0, 0, 0]))
    assert float(r[2, 0]) == pytest.approx(-1.0)  # empty response: the unfinished prompt's penalty lands at 0
    assert float(r[4, 0]) == pytest.approx(math.tanh(0.5))  # the prompt's "great" is credited to the first token
    with pytest.raises(ValueError, match="more than num_tokens"):
        gold_response_token_rewards(["the film was"], ["great ."], num_tokens=1)
    with pytest.raises(ValueError, match="pair up"):
        gold_response_token_rewards(["a", "b"], ["c"], num_tokens=4)


# ---------------------------------------------------------------------------
# Annotators, accuracy, Spearman
# ---------------------------------------------------------------------------


def test_label_preferences_follow_bradley_terry():
    beta, n = 4.0, 20_000
    g = torch.Generator().manual_seed(0)
    for delta in (-0.5, 0.0, 0.25, 1.0):
        a_wins = label_preferences(torch.full((n,), delta), torch.zeros(n), beta, g)
        assert a_wins.dtype == torch.bool
        expected = 1 / (1 + math.exp(-beta * delta))
        assert float(a_wins.float().mean()) == pytest.approx(expected, abs=0.012)  # ~3.5 standard errors
    coin = label_preferences(torch.full((n,), 5.0), torch.zeros(n), 0.0, g)
    assert float(coin.float().mean()) == pytest.approx(0.5, abs=0.012)


def test_label_preferences_rejects_bad_input():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="same length"):
        label_preferences(torch.zeros(3), torch.zeros(2), 1.0, g)
    with pytest.raises(ValueError, match="beta"):
        label_preferences(torch.zeros(3), torch.zeros(3), -1.0, g)


def test_preference_accuracy_hand_case():
    assert preference_accuracy(torch.tensor([2.0, 0.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 1.0, 0.0])) == 0.625
    with pytest.raises(ValueError, match="one length"):
        preference_accuracy(torch.zeros(2), torch.zeros(3))


def test_spearman_hand_cases():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    # ranks of y with a tie: [1, 2, 3.5, 5, 3.5]; ρ = 8 / sqrt(10 · 9.5)
    y = torch.tensor([5.0, 6.0, 7.0, 8.0, 7.0])
    assert spearman_correlation(x, y) == pytest.approx(8 / math.sqrt(95))
    assert spearman_correlation(x, x.exp()) == pytest.approx(1.0)
    assert spearman_correlation(x, -(x**3)) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="constant"):
        spearman_correlation(x, torch.ones(5))


def naive_pair_agreement(a: list[float], b: list[float]) -> float:
    """Pair by pair: 1 when both order i, j alike (or both tie), ½ when only one ties, 0 when they disagree."""
    def order(x, i, j):
        return (x[i] > x[j]) - (x[i] < x[j])

    points = []
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            oa, ob = order(a, i, j), order(b, i, j)
            points.append(1.0 if oa == ob else 0.5 if 0 in (oa, ob) else 0.0)
    return sum(points) / len(points)


def test_ranking_agreement_hand_cases_and_naive_loop():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert reward_model_module.ranking_agreement(x, 10 * x.exp()) == {"spearman_rho": 1.0, "pair_agreement": 1.0}  # scale-free
    assert reward_model_module.ranking_agreement(x, -x) == {"spearman_rho": -1.0, "pair_agreement": 0.0}
    # a = [1, 1, 2], b = [3, 4, 4]: pair (0,1) only b orders it (½), (0,2) alike (1), (1,2) only a orders it (½)
    a, b = torch.tensor([1.0, 1.0, 2.0]), torch.tensor([3.0, 4.0, 4.0])
    tied = reward_model_module.ranking_agreement(a, b)
    assert tied["pair_agreement"] == pytest.approx(2 / 3)
    assert tied["spearman_rho"] == pytest.approx(0.5)  # ranks [1.5, 1.5, 3] and [1, 2.5, 2.5]: 0.75 / 1.5
    assert tied["spearman_rho"] == pytest.approx(spearman_correlation(a, b))
    rng = random.Random(0)
    for n in (2, 7, 300, 600):  # 300 and 600 cross the block boundary of the vectorised version
        a = [float(rng.randint(0, 20)) for _ in range(n)]  # small integers: plenty of ties
        b = [v + rng.gauss(0, 5) if rng.random() < 0.8 else float(rng.randint(0, 20)) for v in a]
        got = reward_model_module.ranking_agreement(torch.tensor(a), torch.tensor(b))["pair_agreement"]
        assert got == pytest.approx(naive_pair_agreement(a, b), abs=1e-12)
    with pytest.raises(ValueError, match="one length N >= 2"):
        reward_model_module.ranking_agreement(torch.zeros(3), torch.zeros(4))


# ---------------------------------------------------------------------------
# The preference data set
# ---------------------------------------------------------------------------


def tiny_dataset(n=4):
    texts = grammar.sample_reviews(2 * n, seed=3)
    scores = gold_reward(texts)
    return PreferenceDataset(["p"] * n, texts[:n], texts[n:], scores[:n], scores[n:])


def test_preference_dataset_checks_and_splits():
    ds = tiny_dataset(10)
    train, test = ds.split(0.8)
    assert (len(train), len(test)) == (8, 2)
    assert test.chosen == ds.chosen[8:]
    with pytest.raises(ValueError, match="got lengths 2, 2, 1, 2, 2, 2"):
        PreferenceDataset(["p", "q"], ["a", "b"], ["c"], torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="one side empty"):
        ds.split(0.01)
    with pytest.raises(ValueError, match="non-decreasing"):
        PreferenceDataset(["p", "q"], ["a", "b"], ["c", "d"], torch.zeros(2), torch.zeros(2), groups=[1, 0])
    # groups of 3, 1 and 2 pairs: a split never cuts a group
    grouped = PreferenceDataset(["p"] * 6, list("abcdef"), list("ghijkl"), torch.zeros(6), torch.zeros(6),
                                groups=[0, 0, 0, 4, 7, 7])
    assert grouped.num_groups == 3
    first, rest = grouped.split(0.5)
    assert (first.groups, rest.groups) == ([0, 0, 0, 4], [7, 7])
    assert grouped.first_groups(1).chosen == list("abc")


def test_make_preference_dataset(tiny):
    model, tokenizer = tiny
    prompts = grammar.review_prompts(8, seed=0)
    ds = make_preference_dataset(model, tokenizer, prompts, n_pairs=12, seed=0)
    assert len(ds) == 12 and ds.groups == sorted(set(ds.groups))  # two responses: one pair per prompt
    assert all(c != r for c, r in zip(ds.chosen, ds.rejected))
    assert all(c.startswith(p) and r.startswith(p) for p, c, r in zip(ds.prompts, ds.chosen, ds.rejected))
    assert_close(ds.chosen_scores, gold_reward(ds.chosen))
    assert_close(ds.rejected_scores, gold_reward(ds.rejected))
    again = make_preference_dataset(model, tokenizer, prompts, n_pairs=12, seed=0)
    assert again.chosen == ds.chosen and again.rejected == ds.rejected


def test_make_preference_dataset_compares_every_pair_of_k_responses(tiny):
    model, tokenizer = tiny
    prompts = grammar.review_prompts(6, seed=2)
    ds = make_preference_dataset(model, tokenizer, prompts, seed=0, responses_per_prompt=4)  # every prompt once
    assert ds.num_groups <= 6 and len(ds) > 6  # more than one pair per prompt
    for group in set(ds.groups):
        pairs = [(c, r) for g, c, r in zip(ds.groups, ds.chosen, ds.rejected) if g == group]
        assert len(pairs) <= 6 and all(c != r for c, r in pairs)  # at most C(4, 2) pairs, never a text with itself
    train, test = ds.split(0.5)
    assert not set(train.groups) & set(test.groups)  # a prompt's responses stay on one side
    exact = make_preference_dataset(model, tokenizer, prompts, n_pairs=10, seed=0, responses_per_prompt=4)
    assert len(exact) == 10


# ---------------------------------------------------------------------------
# The reward model
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reward_model():
    return load_reward_model(seed=0)


def test_head_reads_the_last_non_pad_token_under_left_padding(reward_model):
    rm, tokenizer = reward_model
    texts = ["the film was great .", "i really loved it . you should see it .", "what a mess !"]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    assert tokenizer.padding_side == "left" and (enc["input_ids"][:, 0] == tokenizer.pad_token_id).any()
    batched = reward_scores(rm, tokenizer, texts)  # (3,) one left-padded batch
    alone = torch.cat([reward_scores(rm, tokenizer, [t]) for t in texts])  # (3,) no padding at all
    assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    # and it is the head applied to the backbone's hidden state at the last real token
    with torch.no_grad():
        hidden = rm.model(**tokenizer(texts[1:2], return_tensors="pt")).last_hidden_state  # (1, L, H)
        assert_close(rm.score(hidden[:, -1]).squeeze(-1), alone[1:2], atol=1e-5, rtol=1e-5)


def test_reward_model_save_and_load_round_trip(reward_model, tmp_path):
    rm, tokenizer = reward_model
    rm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_reward_model(tmp_path, seed=123)  # the saved head wins over the seed
    texts = grammar.sample_reviews(5, seed=0)
    assert_close(reward_scores(loaded, loaded_tokenizer, texts), reward_scores(rm, tokenizer, texts))


def test_head_initialisation_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, _ = load_reward_model(seed=1)
    b, _ = load_reward_model(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert_close(a.score.weight, b.score.weight)


def test_train_reward_model_rejects_empty_data_and_nan(reward_model):
    rm, tokenizer = reward_model
    with pytest.raises(ValueError, match="empty"):
        train_reward_model(rm, tokenizer, tiny_dataset(4)[:0], progress=False)
    broken, _ = load_reward_model(seed=0)
    with torch.no_grad():
        broken.score.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="at step 0"):
        train_reward_model(broken, tokenizer, tiny_dataset(4), progress=False)


def test_pair_rewards_score_each_text_once(reward_model):
    rm, tokenizer = reward_model
    texts = grammar.sample_reviews(4, seed=9)
    ds = PreferenceDataset(["p"] * 3, [texts[0], texts[0], texts[1]], [texts[1], texts[2], texts[3]],
                           torch.zeros(3), torch.zeros(3), groups=[0, 0, 0])
    chosen_rewards, rejected_rewards = pair_rewards(rm, tokenizer, ds)
    assert_close(chosen_rewards, reward_scores(rm, tokenizer, ds.chosen), atol=1e-5, rtol=1e-5)
    assert_close(rejected_rewards, reward_scores(rm, tokenizer, ds.rejected), atol=1e-5, rtol=1e-5)
    # training sees the group as 4 distinct texts and 3 pairs indexing into them
    [(group_texts, chosen_idx, rejected_idx)] = reward_model_module._group_batches(ds)
    assert group_texts == [texts[0], texts[1], texts[2], texts[3]]
    assert (chosen_idx, rejected_idx) == ([0, 0, 1], [1, 2, 3])


def test_train_reward_model_history_and_determinism():
    ds = tiny_dataset(8)  # 8 pairs, each its own group of 2 texts
    runs = []
    for _ in range(2):
        rm, tokenizer = load_reward_model(seed=0)
        history = train_reward_model(rm, tokenizer, ds, num_epochs=2, batch_size=4, seed=0, progress=False)
        runs.append((history, reward_scores(rm, tokenizer, ds.chosen)))
    history = runs[0][0]
    assert [h["step"] for h in history] == list(range(8)) and [h["epoch"] for h in history] == [0] * 4 + [1] * 4
    assert set(history[0]) == {"step", "epoch", "loss", "accuracy", "margin", "pairs"}
    assert [h["pairs"] for h in history] == [2] * 8  # 4 texts per step = 2 pairs
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=0.2)  # a fresh head barely separates pairs
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


# Bands for a retrained reward model against the shipped rlcourse/assets/tiny-rm (itself trained on
# another machine). Measured by retraining here (AMD EPYC, AVX-512, MKL) normally, under
# ATEN_CPU_CAPABILITY=default (scalar kernels), =avx2 and MKL_CBWR=COMPATIBLE, with training seeds 1
# and 2, and with two broken recipes (1 thread instead of 2 gave the very same model as here):
#                               shipped  here / scalar / AVX2 / MKL compat   seeds 1, 2    1 epoch  lr ÷ 10
#   held-out accuracy           0.8035   0.8078 / 0.8040 / 0.8066 / 0.8042   0.8028 0.8058  0.7856   0.7580
#   Spearman ρ with gold        0.9025   0.9077 / 0.9032 / 0.9105 / 0.8998   0.9014 0.8991  0.8581   0.8017
#   Spearman ρ with the shipped 1        0.973  / 0.971  / 0.977  / 0.966    0.945  0.940   0.927    0.874
#   pair agreement with shipped 1        0.931  / 0.929  / 0.936  / 0.923    0.902  0.896   0.885    0.847
# (Measured with the shipped model of before the course's own sampler, same recipe; the model shipped
# since, trained on that sampler's responses, has accuracy 0.8026 and ρ with gold 0.9076, recipe.json.)
# Rounding differences grow over three epochs into a different model, nearly as different as another
# seed's, so the weights cannot match across CPUs; the figures and the ranking of responses can.
ACCURACY_ATOL = 0.015  # 3.5 times the largest move of held-out accuracy from the shipped figure (0.0043)
RHO_GOLD_ATOL = 0.025  # 3 times the largest move of Spearman ρ with gold (0.008); one epoch moves it 0.044
NOISE_CEILING_ATOL = 0.005  # depends on the data alone: identical in every run (one re-sampled response: ~1e-4)
MIN_SPEARMAN_WITH_SHIPPED = 0.95  # other numerics 0.966–0.977; another seed 0.940–0.945; one epoch 0.927
MIN_PAIR_AGREEMENT_WITH_SHIPPED = 0.90  # other numerics 0.923–0.936; another seed 0.896–0.902; one epoch 0.885


def test_notebook_02_trains_the_shipped_recipe():
    """Notebook 02 retrains the reward model from scratch and checks, on every CI run and under both
    perturbed numerics of `make test-portable`, that it reaches the shipped figures (recipe.json) within
    the bands above and ranks held-out responses like the shipped model. That check is the recipe's
    reproduction test only if the notebook trains exactly RM_RECIPE: compare its constants."""
    import ast

    import nbformat

    nb = nbformat.read(Path(__file__).parents[1] / "notebooks" / "02_reward_modeling.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    constants = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], (ast.Name, ast.Tuple)):
            targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else [node.targets[0]]
            names = [t.id if isinstance(t, ast.Name) else None for t in targets]
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for name, value in zip(names, values):
                if isinstance(value, ast.Constant):
                    constants[name] = value.value
    r = reward_model_module.RM_RECIPE
    assert (constants["N_PROMPTS"], constants["RESPONSES_PER_PROMPT"], constants["TRAIN_FRAC"]) == \
        (r["n_prompts"], r["responses_per_prompt"], r["train_frac"])
    assert (constants["NUM_EPOCHS"], constants["LR"], constants["BATCH_SIZE"]) == (r["num_epochs"], r["lr"], r["batch_size"])
    assert f"grammar.review_prompts(N_PROMPTS, seed={r['prompt_seed']}), seed={r['data_seed']}, beta=BETA" in source
    assert f"batch_size=BATCH_SIZE, seed={r['seed']}" in source and "BETA = reward_model.ANNOTATOR_BETA" in source
    # the reproduction claims, with the bands measured above
    assert f"shipped_figures[\"heldout_accuracy\"], -{ACCURACY_ATOL}, {ACCURACY_ATOL})" in source
    assert f"shipped_figures[\"spearman_rho\"], -{RHO_GOLD_ATOL}, {RHO_GOLD_ATOL})" in source
    assert f"agreement[\"spearman_rho\"], low={MIN_SPEARMAN_WITH_SHIPPED})" in source
    assert f"agreement[\"pair_agreement\"], low={MIN_PAIR_AGREEMENT_WITH_SHIPPED})" in source


def test_reproduce_trained_reward_model_saves_what_it_trained(tiny, tmp_path):
    """The code path of `rlcourse train-reward-model` on a small split: the saved model is the one
    trained, recipe.json holds its figures (the full recipe runs in notebook 02)."""
    model, tokenizer = tiny
    pairs = reward_model_module.make_preference_dataset(model, tokenizer, grammar.review_prompts(6, seed=3), seed=0,
                                                        responses_per_prompt=4, max_new_tokens=8)
    train, held_out = pairs.split(0.5)
    rm, rm_tokenizer, figures = reward_model_module.reproduce_trained_reward_model(out_dir=tmp_path, progress=False,
                                                                                   split=(train, held_out))
    assert set(figures) >= {"heldout_accuracy", "noise_ceiling", "spearman_rho", "train_pairs", "heldout_pairs"}
    assert (figures["train_pairs"], figures["heldout_pairs"]) == (len(train), len(held_out))
    texts = sorted(set(held_out.chosen + held_out.rejected))
    saved, saved_tokenizer = load_reward_model(tmp_path)
    assert_close(reward_scores(saved, saved_tokenizer, texts), reward_scores(rm, rm_tokenizer, texts))
    assert json.loads((tmp_path / "recipe.json").read_text())["figures"] == pytest.approx(figures)


def test_load_trained_reward_model_scores_like_the_gold_reward():
    """The shipped reward model ranks a clearly positive review above a clearly negative one and
    above positive word salad (what the gold reward says), from any batch position."""
    rm, tokenizer = reward_model_module.load_trained_reward_model()
    texts = ["the film was awful .", "the film was truly brilliant and very moving . i adored the script .",
             "great amazing superb brilliant"]
    scores = reward_model_module.reward_scores(rm, tokenizer, texts)
    assert scores[1] > scores[0] and scores[1] > scores[2]
    alone = torch.stack([reward_model_module.reward_scores(rm, tokenizer, [t])[0] for t in texts])
    torch.testing.assert_close(scores, alone, rtol=0, atol=1e-4)


def test_shipped_figures_are_what_recipe_json_holds():
    """The one reader of the shipped reward model's figures (notebook 02 quotes them)."""
    figures = reward_model_module.shipped_figures()
    assert set(figures) == {"heldout_accuracy", "noise_ceiling", "spearman_rho", "train_pairs", "heldout_pairs"}
    assert 0.5 < figures["heldout_accuracy"] <= 1.0 and figures["train_pairs"] > figures["heldout_pairs"] > 0


def test_calibration_matches_numpy_polyfit_and_rejects_constant_gold():
    import numpy as np

    g = torch.Generator().manual_seed(0)
    gold = torch.randn(200, generator=g)
    proxy = 2.6 * gold + 0.3 + 0.5 * torch.randn(200, generator=g)
    slope, intercept = calibration(proxy, gold)
    expected_slope, expected_intercept = np.polyfit(gold.numpy().astype(float), proxy.numpy().astype(float), 1)
    assert slope == pytest.approx(expected_slope, rel=1e-9)
    assert intercept == pytest.approx(expected_intercept, rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="gold rewards are all equal"):
        calibration(proxy[:3], torch.ones(3))
    with pytest.raises(ValueError, match="one length"):
        calibration(proxy, gold[:10])
