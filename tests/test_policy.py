"""policy.py against naive loops, hand-worked cases, and the sampling pass itself."""

import math

import pytest
import torch

from rlcourse.model import policy
from rlcourse.world import grammar


def naive_token_logprobs(logits, labels):
    """log softmax by its definition, one position at a time."""
    B, T, _ = logits.shape
    out = torch.empty(B, T)
    for b in range(B):
        for t in range(T):
            row = [float(x) for x in logits[b, t]]
            log_z = math.log(sum(math.exp(x) for x in row))
            out[b, t] = row[int(labels[b, t])] - log_z
    return out


def test_token_logprobs_hand_case():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]]))
    got = policy.token_logprobs(logits, torch.tensor([[0, 2]]))
    torch.testing.assert_close(got, torch.log(torch.tensor([[0.5, 0.7]])))


def test_token_logprobs_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g) * 3
    labels = torch.randint(0, 11, (3, 5), generator=g)
    torch.testing.assert_close(policy.token_logprobs(logits, labels), naive_token_logprobs(logits, labels))


@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), "shape \\(B, T, V\\)"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), "labels must have shape"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3), "integer token ids"),
        (torch.zeros(2, 3, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), "float tensor"),
    ],
)
def test_token_logprobs_rejects_bad_input(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        policy.token_logprobs(logits, labels)


def test_entropy_hand_cases():
    V = 8
    uniform = torch.zeros(1, 2, V)
    certain = torch.tensor([[[100.0] + [0.0] * (V - 1)] * 2])
    assert float(policy.entropy(uniform, torch.ones(1, 2))) == pytest.approx(math.log(V))
    assert float(policy.entropy(certain, torch.ones(1, 2))) == pytest.approx(0.0, abs=1e-6)
    # masked positions do not count: mean over the one unmasked uniform position
    mixed = torch.cat([uniform[:, :1], certain[:, :1]], dim=1)
    assert float(policy.entropy(mixed, torch.tensor([[1, 0]]))) == pytest.approx(math.log(V))
    # two-way coin 0.25/0.75 by hand: -(.25 ln .25 + .75 ln .75) = 0.5623
    coin = torch.log(torch.tensor([[[0.25, 0.75]]]))
    assert float(policy.entropy(coin, torch.ones(1, 1))) == pytest.approx(0.5623, abs=1e-4)


def test_response_mask_ends_at_first_eos_not_at_pad():
    eos, pad = 2, 0
    ids = torch.tensor([[5, pad, 7, eos, 9], [eos, 5, 5, 5, 5], [5, 6, 7, 8, 9]])
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    torch.testing.assert_close(policy.response_mask_from_ids(ids, eos), expected)


def naive_sequence_logprob(model, tokenizer, prompt, response_ids):
    """No padding, no batching: score each response token from its own unpadded prefix."""
    ids = tokenizer(prompt)["input_ids"]
    total = 0.0
    for token in response_ids:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        total += float(torch.log_softmax(logits.float(), -1)[token])
        ids = ids + [token]
    return total


def test_sequence_logprob_matches_unpadded_naive_loop(tiny):
    model, tokenizer = tiny
    gen = policy.generate(model, tokenizer, ["the movie was", "i think that this film"], max_new_tokens=10,
                          generator=torch.Generator().manual_seed(1))
    P = gen.prompt_ids.shape[1]
    full_response_mask = torch.cat([torch.zeros_like(gen.prompt_mask), gen.response_mask], 1)
    with torch.no_grad():
        got = policy.sequence_logprob(model, gen.input_ids, gen.attention_mask, full_response_mask)
    for b, prompt in enumerate(gen.prompts):
        kept = [int(i) for i, m in zip(gen.response_ids[b], gen.response_mask[b]) if m]
        assert float(got[b]) == pytest.approx(naive_sequence_logprob(model, tokenizer, prompt, kept), abs=1e-4)
    assert P > 0


def test_left_padded_recompute_matches_sampling_pass(tiny):
    """The log-probs the RL loop recomputes must equal those seen while sampling (1e-4)."""
    model, tokenizer = tiny
    prompts = grammar.review_prompts(16, seed=3)
    prompts[0] = "the"  # force very different prompt lengths -> real left padding
    gen = policy.generate(model, tokenizer, prompts, max_new_tokens=24, generator=torch.Generator().manual_seed(2))
    assert (gen.prompt_mask == 0).any(), "the batch should contain left padding"
    with torch.no_grad():
        logits = policy.response_logits(model, gen.input_ids, gen.attention_mask, gen.response_ids.shape[1])
    recomputed = policy.token_logprobs(logits, gen.response_ids) * gen.response_mask
    torch.testing.assert_close(recomputed, gen.logprobs, atol=1e-4, rtol=0)


def test_generate_is_seeded_and_leaves_global_rng_alone(tiny):
    model, tokenizer = tiny
    prompts = grammar.review_prompts(8, seed=0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = policy.generate(model, tokenizer, prompts, generator=torch.Generator().manual_seed(5))
    after = torch.rand(1)
    b = policy.generate(model, tokenizer, prompts, generator=torch.Generator().manual_seed(5))
    c = policy.generate(model, tokenizer, prompts, generator=torch.Generator().manual_seed(6))
    assert torch.equal(before, after)
    assert a.texts == b.texts and torch.equal(a.response_ids, b.response_ids)
    assert a.texts != c.texts


def test_generate_masks_and_texts_are_consistent(tiny):
    model, tokenizer = tiny
    gen = policy.generate(model, tokenizer, grammar.review_prompts(32, seed=1), max_new_tokens=6,
                          generator=torch.Generator().manual_seed(0))
    B, T = gen.response_ids.shape
    assert gen.response_mask.shape == (B, T) == gen.logprobs.shape and T <= 6
    for ids, mask, finished in zip(gen.response_ids, gen.response_mask, gen.finished):
        n = int(mask.sum())
        assert torch.all(mask[:n] == 1) and torch.all(mask[n:] == 0)  # a prefix of ones
        assert bool(finished) == (int(ids[n - 1]) == tokenizer.eos_token_id)
    assert (gen.logprobs[gen.response_mask == 0] == 0).all()
    assert (~gen.finished).any(), "6 tokens are too few for every review: some must be cut"


def test_top_k_only_samples_among_the_k_most_likely(tiny):
    model, tokenizer = tiny
    gen = policy.generate(model, tokenizer, grammar.review_prompts(16, seed=4), max_new_tokens=12, top_k=3,
                          temperature=1.5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = policy.response_logits(model, gen.input_ids, gen.attention_mask, gen.response_ids.shape[1])
    top3 = logits.topk(3, dim=-1).indices  # (B, T, 3)
    in_top = (top3 == gen.response_ids.unsqueeze(-1)).any(-1)
    assert in_top[gen.response_mask.bool()].all()


def test_greedy_equals_top_1(tiny):
    model, tokenizer = tiny
    prompts = grammar.review_prompts(6, seed=7)
    greedy = policy.generate(model, tokenizer, prompts, temperature=0)
    top1 = policy.generate(model, tokenizer, prompts, top_k=1, generator=torch.Generator().manual_seed(9))
    assert greedy.texts == top1.texts


def test_generate_rejects_bad_arguments(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="temperature"):
        policy.generate(model, tokenizer, ["the movie was"], temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        policy.generate(model, tokenizer, ["the movie was"], top_k=-2)
    with pytest.raises(ValueError, match="non-empty list"):
        policy.generate(model, tokenizer, "the movie was")


def test_a_label_outside_the_vocabulary_is_named():
    for label in (7, -1):
        with pytest.raises(ValueError, match=f"labels hold token id {label}, outside the vocabulary of the logits "
                                             r"\(ids 0 to 4\)"):
            policy.token_logprobs(torch.zeros(1, 2, 5), torch.tensor([[1, label]]))
