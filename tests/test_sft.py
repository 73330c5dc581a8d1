"""Supervised fine-tuning: demonstrations, the response-only loss against a naive loop, training, bad input."""

import copy
import random

import pytest
import torch
import torch.nn.functional as F

from rlcourse.model import loading, policy
from rlcourse.rl import loops, losses, sft
from rlcourse.world import demonstrations, grammar, rewards
from rlcourse.world.demonstrations import Demonstration


# ----------------------------------------------------------------------------- the loss


def naive_sft_loss(logits, input_ids, loss_mask):
    """−Σ m log p / Σ m, one token at a time: position t−1's distribution scores token t."""
    total, count = 0.0, 0
    for b in range(input_ids.shape[0]):
        for t in range(1, input_ids.shape[1]):
            if loss_mask[b, t]:
                p = torch.softmax(logits[b, t - 1].double(), dim=-1)
                total -= float(torch.log(p[input_ids[b, t]]))
                count += 1
    return total / count


def test_sft_loss_matches_a_naive_loop_on_random_rows():
    g = torch.Generator().manual_seed(0)
    B, L, V = 4, 7, 11
    logits = torch.randn(B, L, V, generator=g) * 3
    input_ids = torch.randint(0, V, (B, L), generator=g)
    loss_mask = (torch.rand(B, L, generator=g) < 0.5).long()
    loss_mask[:, 0] = 0
    loss_mask[:, -1] = 1  # every row imitates at least one token
    assert float(losses.sft_loss(logits, input_ids, loss_mask)) == pytest.approx(naive_sft_loss(logits, input_ids, loss_mask), rel=1e-5)


def test_sft_loss_equals_hugging_face_labels_convention(tiny):
    """Prompt tokens as label −100 in the model's own loss give the same number as the response mask."""
    model, tokenizer = tiny
    demos = [Demonstration("the film was", "great ."), Demonstration("what a", "dull movie ! i would not recommend it .")]
    batch = sft.encode_demonstrations(tokenizer, demos)
    labels = batch["input_ids"].masked_fill(batch["loss_mask"] == 0, -100)
    with torch.no_grad():
        theirs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                       position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)).loss
        ours = sft.demonstration_loss(model, batch)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_sft_loss_ignores_what_the_mask_leaves_out():
    """Changing a prompt token's logits (or a padded token's id) does not change the loss."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 5, generator=g)
    input_ids = torch.randint(0, 5, (2, 6), generator=g)
    loss_mask = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]])
    before = losses.sft_loss(logits, input_ids, loss_mask)
    logits[:, 0] += 100.0  # position 0 predicts token 1, a prompt token in both rows
    input_ids[1, 2] = (input_ids[1, 2] + 1) % 5  # a prompt token of row 1
    logits[1, 1] -= 50.0  # ... and the logits that predict it
    torch.testing.assert_close(losses.sft_loss(logits, input_ids, loss_mask), before)


def test_sft_loss_gradient_reaches_only_the_logits_that_predict_marked_tokens():
    logits = torch.zeros(1, 5, 4, requires_grad=True)
    losses.sft_loss(logits, torch.tensor([[1, 2, 3, 0, 1]]), torch.tensor([[0, 0, 0, 1, 1]])).backward()
    touched = logits.grad.abs().sum(-1)[0]  # (L,)
    assert touched[:2].eq(0).all() and touched[2:4].gt(0).all() and touched[4] == 0


def test_sft_loss_rejects_a_prompt_mask_that_covers_a_whole_row():
    logits = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match="row 1 of loss_mask marks no token, so the prompt mask covers the whole row"):
        losses.sft_loss(logits, torch.zeros(2, 4, dtype=torch.long), torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0]]))


def test_sft_loss_rejects_position_zero_and_wrong_shapes():
    logits = torch.zeros(1, 4, 3)
    with pytest.raises(ValueError, match="loss_mask marks position 0"):
        losses.sft_loss(logits, torch.zeros(1, 4, dtype=torch.long), torch.tensor([[1, 0, 1, 1]]))
    with pytest.raises(ValueError, match=r"input_ids must be integer ids of shape \(B, L\) = \(1, 4\)"):
        losses.sft_loss(logits, torch.zeros(1, 3, dtype=torch.long), torch.tensor([[0, 0, 1]]))


# ----------------------------------------------------------------------------- encoding


def test_encode_demonstrations_masks_by_hand(tiny):
    _, tokenizer = tiny
    demos = [Demonstration("the film was", "good ."), Demonstration("what a", "bad film !")]
    enc = sft.encode_demonstrations(tokenizer, demos)
    # row 0: <bos> the film was good . <eos> (7); row 1: <bos> what a bad film ! <eos> (7)
    assert enc["loss_mask"].tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]]
    everything = sft.encode_demonstrations(tokenizer, [demos[0], Demonstration("what a", "dull film")], response_only=False)
    # row 1 is one token shorter: left padding, then <bos>, neither of which is imitated
    assert everything["loss_mask"].tolist() == [[0, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]]
    assert everything["input_ids"][1, 0] == tokenizer.pad_token_id


def test_bad_demonstration_sets_get_one_sentence(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="the demonstration set is empty"):
        sft.train_sft(sft.SFTConfig(num_steps=1), copy.deepcopy(model), tokenizer, [])
    too_long = Demonstration("the film was", " ".join(["good ."] * 200))
    with pytest.raises(ValueError, match=r"row 1 is 405 tokens, longer than the model's context of 256"):
        sft.train_sft(sft.SFTConfig(num_steps=1), copy.deepcopy(model), tokenizer,
                      [Demonstration("the film was", "good ."), too_long])
    with pytest.raises(ValueError, match="demonstration 0 has an empty response"):
        sft.encode_demonstrations(tokenizer, [Demonstration("the film was", " ")])


# ----------------------------------------------------------------------------- demonstrations


def test_demonstrations_are_deterministic_fit_the_budget_and_beat_a_single_draft():
    prompts = grammar.review_prompts(60, seed=5)
    demos = demonstrations.make_demonstrations(prompts, seed=2)
    assert demos == demonstrations.make_demonstrations(prompts, seed=2)
    assert [d.prompt for d in demos] == prompts
    assert all(grammar.is_grammatical(d.text) and 1 <= len(d.response.split()) <= 31 for d in demos)
    first_drafts = demonstrations.make_demonstrations(prompts, seed=2, num_drafts=1)
    best = rewards.gold_reward([d.text for d in demos]).mean()
    single = rewards.gold_reward([d.text for d in first_drafts]).mean()
    assert best > single + 0.3  # measured: 0.69 vs −0.01 on 2,000 prompts


def test_split_by_prompt_keeps_each_prompt_on_one_side():
    demos = demonstrations.make_demonstrations(grammar.review_prompts(200, seed=0), seed=0)
    held = sorted(grammar.REVIEW_PROMPTS)[:5]
    train, held_out = demonstrations.split_by_prompt(demos, held)
    assert len(train) + len(held_out) == len(demos)
    assert {d.prompt for d in held_out} <= set(held) and not {d.prompt for d in train} & set(held)
    with pytest.raises(ValueError, match="hold out some, but not all"):
        demonstrations.split_by_prompt(demos, list(grammar.REVIEW_PROMPTS))


# ----------------------------------------------------------------------------- training


ODD_PROMPTS = ["dull dull dull dull", "! ! ! the", "great , great , great ,"]  # in the vocabulary, never a text's start


def _sft_prompt_shift(tiny, response_only: bool) -> tuple[float, float, float]:
    """Train on odd prompts with ordinary responses; return (Δ log p(prompt) per token, loss before, after)."""
    model, tokenizer = tiny
    rng = random.Random(0)
    demos = [Demonstration(p, grammar.sample_review(rng)) for p in ODD_PROMPTS for _ in range(20)]
    student = copy.deepcopy(model)
    before_prompt = sft.prompt_logprob(student, tokenizer, ODD_PROMPTS)
    before = sft.heldout_loss(student, tokenizer, demos)
    history = sft.train_sft(sft.SFTConfig(num_steps=30, batch_size=16, lr=2e-3, response_only=response_only),
                            student, tokenizer, demos, progress=False)
    assert len(history) == 30
    return sft.prompt_logprob(student, tokenizer, ODD_PROMPTS) - before_prompt, before, sft.heldout_loss(student, tokenizer, demos)


def test_response_only_sft_does_not_learn_to_write_the_prompts(tiny):
    shift_response_only, before, after = _sft_prompt_shift(tiny, response_only=True)
    shift_all_tokens, _, _ = _sft_prompt_shift(tiny, response_only=False)
    assert after < before - 0.1  # it did learn the responses
    assert shift_all_tokens > 1.0  # the loss on every token teaches the odd prompts
    assert shift_response_only < 0.2 * shift_all_tokens  # the masked loss does not (measured +0.55 vs +10.5 nats per token)


def test_train_sft_reuses_the_pretraining_loop_and_repeats(tiny):
    model, tokenizer = tiny
    demos = demonstrations.make_demonstrations(grammar.review_prompts(40, seed=1), seed=1)
    runs = []
    for _ in range(2):
        student = copy.deepcopy(model)
        runs.append((sft.train_sft(sft.SFTConfig(num_steps=5, batch_size=8), student, tokenizer, demos, progress=False),
                     student.model.embed_tokens.weight.clone()))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], model.model.embed_tokens.weight)


def test_the_rl_loop_trains_a_copy_of_a_frozen_reference(tiny):
    """A copy of a frozen π_ref (as the SFT model becomes once used as a reference) still learns."""
    model, tokenizer = tiny
    reference = copy.deepcopy(model).requires_grad_(False)
    student = copy.deepcopy(reference)
    loops.train(loops.RLOOConfig(num_steps=1, num_prompts=2, group_size=2, max_new_tokens=8), model=student,
                tokenizer=tokenizer, ref_model=reference, progress=False)
    assert not torch.equal(student.lm_head.weight, reference.lm_head.weight)
    assert not any(p.requires_grad for p in reference.parameters())


def test_encode_prompt_responses_leaves_a_cut_response_without_eos(tiny):
    _, tokenizer = tiny
    enc = policy.encode_prompt_responses(tokenizer, ["the film was"], ["good"], ended=[False])
    assert enc["input_ids"][0, -1] != tokenizer.eos_token_id and enc["response_mask"][0].tolist() == [0, 0, 0, 0, 1]
    assert F.pad(enc["attention_mask"], (0, 0)).sum() == 5


def test_doctests():
    import doctest

    for module in (demonstrations, policy):
        result = doctest.testmod(module, extraglobs={"torch": torch})
        assert result.attempted > 0 and result.failed == 0, module.__name__
