"""The decoding loop (rlcourse.model.sampling) against the Hugging Face forward and the model's own distribution.

Same seed need not give the same tokens as ``model.generate``; what must hold is that every
step's logits are the model's (the forward over the whole sequence), that the log-probs the
loop records are those a full forward recomputes, and that token frequencies over many samples
match the distribution the loop claims to sample from.
"""

import math

import pytest
import torch
from torch.testing import assert_close

from rlcourse.model import policy, sampling
from rlcourse.world import grammar


def _batch(tokenizer, n=16, seed=3):
    prompts = grammar.review_prompts(n, seed=seed)
    prompts[0] = "the"  # very different prompt lengths: real left padding
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    assert (enc["attention_mask"] == 0).any()
    return enc["input_ids"], enc["attention_mask"]


def _full_forward_logits(model, prompt_ids, prompt_mask, response_ids, pad_id):
    """The logits a single forward over prompt + response assigns to each response token, (B, T, V)."""
    mask = torch.cat([prompt_mask, torch.ones_like(response_ids)], dim=1)
    with torch.no_grad():
        logits = policy.forward(model, torch.cat([prompt_ids, response_ids], dim=1), mask).logits.float()
    P, T = prompt_ids.shape[1], response_ids.shape[1]
    return logits[:, P - 1 : P - 1 + T]


@pytest.mark.parametrize("fast", [True, False])
def test_every_step_logits_equal_the_full_forward(tiny, fast):
    """The fast decoder (and the general path) see exactly the model's logits at every live step,
    also after ended rows were dropped from the batch."""
    model, tokenizer = tiny
    prompt_ids, prompt_mask = _batch(tokenizer)
    decoder = sampling.decoder_for(model, prompt_ids, prompt_mask, 40, fast=fast)
    assert isinstance(decoder, sampling._LlamaDecoder if fast else sampling._CachedDecoder)
    ids, logprobs, logits = sampling.sample(model, prompt_ids, prompt_mask, 40, 1.0, 0, torch.Generator().manual_seed(0),
                                            tokenizer.eos_token_id, tokenizer.pad_token_id, fast=fast, return_logits=True)
    live = policy.response_mask_from_ids(ids, tokenizer.eos_token_id).bool()  # (B, T)
    lengths = live.sum(1)
    assert lengths.min() < ids.shape[1] // 2, "some rows should end early, so that dropping them is tested"
    expected = _full_forward_logits(model, prompt_ids, prompt_mask, ids, tokenizer.pad_token_id)
    assert_close(logits[live], expected[live], rtol=1e-5, atol=1e-5)
    # and the recorded log-probs are those of the sampled tokens under those logits
    assert_close(logprobs[live], policy.token_logprobs(expected, ids)[live], rtol=0, atol=1e-4)


def test_generate_logprobs_match_a_full_forward_recompute(tiny):
    model, tokenizer = tiny
    gen = policy.generate(model, tokenizer, grammar.story_prompts(12, seed=2), max_new_tokens=30,
                          generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        logits = policy.response_logits(model, gen.input_ids, gen.attention_mask, gen.response_ids.shape[1])
    assert_close(policy.token_logprobs(logits, gen.response_ids) * gen.response_mask, gen.logprobs, atol=1e-4, rtol=0)


def _chi_square(counts: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0) -> tuple[float, int]:
    """Pearson's χ² of observed ``counts`` against ``probs``, tokens with small expectation pooled."""
    n = counts.sum()
    expected = probs * n
    big = expected >= min_expected
    obs = torch.cat([counts[big], counts[~big].sum()[None]])
    exp = torch.cat([expected[big], expected[~big].sum()[None]])
    keep = exp > 0
    return float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()), int(keep.sum()) - 1


def _chi_square_bound(dof: int) -> float:
    """A bound that χ²(dof) exceeds with probability < 1e-6 (Wilson–Hilferty, z = 4.9)."""
    z = 4.9
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (0.7, 0), (1.3, 5)])
def test_first_token_frequencies_match_the_tempered_distribution(tiny, temperature, top_k):
    """Over 6,000 samples the first token follows softmax(logits/τ) over the top-k, computed here by hand."""
    model, tokenizer = tiny
    prompt, n = "the movie was", 6000
    with torch.no_grad():
        logits = policy.model_logits(model, *tokenizer([prompt], return_tensors="pt").values())[0, -1]  # (V,)
    scores = logits / temperature
    if top_k:
        scores = torch.where(scores >= scores.sort(descending=True).values[top_k - 1], scores, torch.tensor(-math.inf))
    probs = torch.softmax(scores, dim=-1)
    gen = policy.generate(model, tokenizer, [prompt] * n, max_new_tokens=1, temperature=temperature, top_k=top_k,
                          generator=torch.Generator().manual_seed(11))
    counts = torch.bincount(gen.response_ids[:, 0], minlength=probs.numel()).float()
    assert counts[probs == 0].sum() == 0, "a token outside the top-k (probability 0) was sampled"
    stat, dof = _chi_square(counts, probs)
    assert dof >= 3
    assert stat < _chi_square_bound(dof), f"χ² = {stat:.1f} on {dof} degrees of freedom"


def test_second_token_follows_the_model_given_the_first(tiny):
    """The cached step is sampled from the model's conditional distribution, not only the first token."""
    model, tokenizer = tiny
    prompt, n = "i think", 6000
    gen = policy.generate(model, tokenizer, [prompt] * n, max_new_tokens=2, generator=torch.Generator().manual_seed(12))
    first = gen.response_ids[:, 0]
    top = int(torch.mode(first).values)
    assert top != tokenizer.eos_token_id
    seconds = gen.response_ids[first == top, 1]
    assert len(seconds) > 500
    with torch.no_grad():
        ids = tokenizer([prompt], return_tensors="pt")["input_ids"]
        ids = torch.cat([ids, torch.tensor([[top]])], dim=1)
        probs = torch.softmax(policy.model_logits(model, ids, torch.ones_like(ids))[0, -1], dim=-1)
    counts = torch.bincount(seconds, minlength=probs.numel()).float()
    stat, dof = _chi_square(counts, probs)
    assert stat < _chi_square_bound(dof), f"χ² = {stat:.1f} on {dof} degrees of freedom"


def test_frequencies_agree_with_model_generate(tiny):
    """A two-sample check against ``transformers``' own sampler on the same prompt."""
    model, tokenizer = tiny
    prompt, n = "this film", 6000
    ours = policy.generate(model, tokenizer, [prompt] * n, max_new_tokens=1, generator=torch.Generator().manual_seed(13))
    enc = tokenizer([prompt] * n, return_tensors="pt")
    torch.manual_seed(13)
    with torch.no_grad():
        theirs = model.generate(**enc, do_sample=True, top_k=0, max_new_tokens=1, pad_token_id=tokenizer.pad_token_id)
    a = torch.bincount(ours.response_ids[:, 0], minlength=model.config.vocab_size).float()
    b = torch.bincount(theirs[:, -1], minlength=model.config.vocab_size).float()
    pooled = (a + b) / (2 * n)
    stat, dof = _chi_square(a, pooled)
    stat_b, _ = _chi_square(b, pooled)
    assert stat + stat_b < _chi_square_bound(dof)


def test_choose_tokens_never_picks_a_zero_probability_token():
    logits = torch.log(torch.tensor([[0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0]])).repeat(2000, 1)  # (4000, 4)
    picks = sampling.choose_tokens(logits, 1.0, 0, torch.Generator().manual_seed(0))
    assert set(picks[0::2].tolist()) == {1, 3} and set(picks[1::2].tolist()) == {3}
    assert abs(float((picks[0::2] == 1).float().mean()) - 0.5) < 0.05  # 2000 fair coin flips: σ ≈ 0.011


def _general_path_matches_full_forward(model, prompt_ids, max_new_tokens, eos_token_id):
    """Sample from a model the fast path does not know (pad id 0): it must take the general path, and
    every live step's logits must equal a full forward's. Returns the response ids and step logits."""
    prompt_mask = (prompt_ids != 0).long()
    assert isinstance(sampling.decoder_for(model, prompt_ids, prompt_mask, max_new_tokens), sampling._CachedDecoder)
    ids, _, logits = sampling.sample(model, prompt_ids, prompt_mask, max_new_tokens, 1.0, 0,
                                     torch.Generator().manual_seed(1), eos_token_id=eos_token_id, pad_token_id=0,
                                     return_logits=True)
    live = policy.response_mask_from_ids(ids, eos_token_id).bool()
    assert_close(logits[live], _full_forward_logits(model, prompt_ids, prompt_mask, ids, 0)[live], rtol=1e-5, atol=1e-5)
    return ids, logits


def test_gpt2_takes_the_general_path_with_correct_positions():
    """Any other causal LM (here a GPT-2 config, absolute positions) samples through its own forward and cache,
    with position ids that skip the left padding."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=32, n_layer=2, n_head=2)).eval()
    prompt_ids = torch.tensor([[0, 0, 0, 5, 9, 14], [7, 3, 8, 11, 4, 6]])
    ids, logits = _general_path_matches_full_forward(gpt2, prompt_ids, 8, eos_token_id=49)
    # the padded row sees what it would see alone
    with torch.no_grad():
        alone = gpt2(torch.cat([prompt_ids[:1, 3:], ids[:1, :1]], dim=1)).logits[0, -1]
    assert_close(logits[0, 1], alone, rtol=1e-5, atol=1e-5)


def test_a_llama_the_fast_path_does_not_know_falls_back():
    """Grouped-query attention is not written out by hand: that Llama takes the general path, correctly."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config).eval()
    prompt_ids = torch.tensor([[0, 0, 5, 9], [7, 3, 8, 11]])
    _general_path_matches_full_forward(model, prompt_ids, 6, eos_token_id=39)
