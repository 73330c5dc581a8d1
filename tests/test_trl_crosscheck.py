"""rlcourse against TRL's own code on identical tensors (the [trl] extra, installed by `make setup`).

One real GRPOTrainer step's worth of TRL code runs on the course's tiny model:
``_generate_and_score_completions`` samples 2 prompts of different lengths × G = 4 (so the
batch is left-padded), scores them with the gold reward and computes TRL's advantages and
reference log-probs; ``_get_per_token_logps_and_entropies`` and ``compute_loss`` give TRL's
per-token log-probs and its k3 KL. rlcourse computes the same quantities from the same
tensors. Where the two could disagree (absolute position embeddings under left padding,
which TRL does not correct), the last test shows it and docs/trl_crosscheck.md explains why.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.testing import assert_close

from rlcourse.rl import advantages as adv
from rlcourse.model import policy
from rlcourse.rl import losses
from rlcourse.world import grammar, rewards

G = 4  # generations per prompt
T = 12  # max completion length


def _prompts_of_different_lengths(tokenizer) -> list[str]:
    """Two review prompts whose token counts differ, so the shorter one is left-padded."""
    prompts = grammar.review_prompts(50, seed=0)
    lengths = {p: len(tokenizer(p)["input_ids"]) for p in prompts}
    short = min(prompts, key=lengths.get)
    long = max(prompts, key=lengths.get)
    assert lengths[long] > lengths[short]
    return [short, long]


@pytest.fixture(scope="module")
def trl_step(tiny, tmp_path_factory):
    """TRL's rollout, rewards and advantages on 2 prompts × G, with the rewards it was given recorded."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    base, tokenizer = tiny
    model = copy.deepcopy(base)
    given = []

    def gold(prompts, completions, **_kwargs):
        scores = rewards.gold_reward([f"{p} {c}".strip() for p, c in zip(prompts, completions)])
        given.append(scores.float())
        return scores.tolist()

    prompts = _prompts_of_different_lengths(tokenizer)
    config = GRPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), per_device_train_batch_size=2 * G,
                        num_generations=G, max_completion_length=T, beta=0.02, loss_type="grpo", use_cpu=True, bf16=False,
                        report_to="none", disable_tqdm=True, seed=0, max_steps=1)
    trainer = GRPOTrainer(model=model, reward_funcs=gold, args=config,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer)
    trainer.model.train()
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions([{"prompt": p} for p in prompts for _ in range(G)])
    assert len(given) == 1
    return trainer, out, given[0]


def _sequences(out):
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)  # (N, P+T)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)  # (N, P+T)
    return ids, mask


def test_the_batch_is_left_padded(trl_step):
    _, out, _ = trl_step
    prompt_mask = out["prompt_mask"]
    assert (prompt_mask[:, 0] == 0).any() and (prompt_mask[:, -1] == 1).all()


def test_group_normalised_advantages_agree(trl_step):
    _, out, scores = trl_step
    assert scores.std() > 0  # a constant reward would make this test vacuous
    assert_close(adv.group_advantages(scores, G), out["advantages"], atol=1e-5, rtol=1e-5)


def test_per_token_logprobs_with_left_padding_agree(trl_step):
    trainer, out, _ = trl_step
    ids, mask = _sequences(out)
    completion_mask = out["completion_mask"].bool()
    Tc = out["completion_ids"].shape[1]
    with torch.no_grad():
        theirs, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, Tc)  # (N, T)
        logits = policy.response_logits(trainer.model, ids, mask, Tc)  # (N, T, V)
    ours = policy.token_logprobs(logits, out["completion_ids"])  # (N, T)
    assert_close(ours[completion_mask], theirs[completion_mask], atol=1e-5, rtol=1e-5)
    # TRL's reference model is a copy of the untrained policy: the same numbers again.
    assert_close(ours[completion_mask], out["ref_per_token_logps"][completion_mask], atol=1e-5, rtol=1e-5)
    # TRL's public helper on the same logits.
    from trl.trainer.utils import selective_log_softmax

    assert_close(ours, selective_log_softmax(logits, out["completion_ids"]), atol=1e-6, rtol=1e-6)


def test_trl_default_bf16_autocast_rounds_the_logprobs(trl_step):
    """TRL 1.16's GRPOConfig turns bf16 on by default, even on a CPU: its log-probs are then
    computed under bfloat16 autocast and are off by up to a few hundredths of a nat. The
    fixture (and benchmarks/rl_step.py) pass bf16=False. See docs/trl_crosscheck.md."""
    import dataclasses

    from trl import GRPOConfig

    # bf16 defaults to None, which __post_init__ turns into `not fp16`, i.e. True.
    assert {f.name: f.default for f in dataclasses.fields(GRPOConfig)}["bf16"] is None
    trainer, out, _ = trl_step
    ids, mask = _sequences(out)
    completion_mask = out["completion_mask"].bool()
    Tc = out["completion_ids"].shape[1]
    with torch.no_grad():
        fp32, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, Tc)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # what TRL's accelerator.autocast() does with bf16=True
            bf16, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, Tc)
    assert (bf16 - fp32)[completion_mask].abs().max() > 1e-3


def test_left_padding_changes_nothing_for_the_rotary_model(trl_step):
    """Each sequence alone, unpadded: the ground truth both implementations must match."""
    trainer, out, _ = trl_step
    ids, mask = _sequences(out)
    Tc = out["completion_ids"].shape[1]
    with torch.no_grad():
        padded = policy.token_logprobs(policy.response_logits(trainer.model, ids, mask, Tc), out["completion_ids"])
        for i in range(ids.shape[0]):
            real = mask[i].bool()
            alone_ids = ids[i, real][None]  # (1, L_i): no padding at all
            n = int(out["completion_mask"][i].sum())
            P_i = int(out["prompt_mask"][i].sum())
            logits = policy.model_logits(trainer.model, alone_ids, torch.ones_like(alone_ids))  # (1, L_i, V)
            alone = policy.token_logprobs(logits[:, P_i - 1 : P_i - 1 + n], alone_ids[:, P_i : P_i + n])[0]
            assert_close(padded[i, :n], alone, atol=1e-4, rtol=1e-4)


def test_k3_kl_agrees_with_trls_loss_path(trl_step):
    trainer, out, _ = trl_step
    inputs = dict(out)
    g = torch.Generator().manual_seed(1)
    # Move π_ref away from π so the KL is not 0 (the policy has not been updated yet).
    inputs["ref_per_token_logps"] = out["ref_per_token_logps"] - 0.3 * torch.rand(out["ref_per_token_logps"].shape, generator=g)
    trainer.current_gradient_accumulation_steps = 1  # what the training loop sets before compute_loss
    trainer.compute_loss(trainer.model, inputs)
    theirs = trainer._metrics["train"]["kl"][-1]
    ids, mask = _sequences(out)
    with torch.no_grad():
        logprobs = policy.token_logprobs(policy.response_logits(trainer.model, ids, mask, out["completion_ids"].shape[1]),
                                         out["completion_ids"])
    completion_mask = out["completion_mask"].float()
    ours = adv.masked_mean(losses.kl_k3(logprobs, inputs["ref_per_token_logps"]), completion_mask)
    assert theirs > 0.01
    assert float(ours) == pytest.approx(theirs, rel=1e-5)


def test_absolute_positions_under_left_padding_need_position_ids():
    """Why the tiny model is rotary: a GPT-2-style model (absolute positions) scored the way TRL
    1.16 scores it (input_ids + attention_mask, no position_ids) gives wrong log-probs for
    left-padded rows; position_ids = cumsum(mask) − 1 fixes them. See docs/trl_crosscheck.md."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=2)).eval()
    alone = torch.tensor([[5, 9, 14, 3, 7]])  # (1, 5)
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), alone], dim=1)  # (1, 8): 3 pads on the left
    mask = (torch.arange(8) >= 3).long()[None]  # (1, 8)
    with torch.no_grad():
        truth = policy.token_logprobs(gpt2(alone).logits[:, :-1], alone[:, 1:])  # (1, 4)
        trl_way = policy.token_logprobs(gpt2(padded, attention_mask=mask).logits[:, 3:-1], alone[:, 1:])
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        fixed = policy.token_logprobs(gpt2(padded, attention_mask=mask, position_ids=position_ids).logits[:, 3:-1],
                                      alone[:, 1:])
    assert (trl_way - truth).abs().max() > 1e-3
    assert_close(fixed, truth, atol=1e-5, rtol=1e-5)
