"""Supervised fine-tuning (SFT): imitate demonstrations before any RL.

The first stage after pretraining in InstructGPT's pipeline (Ouyang et al. 2022, §3.5; Stiennon
et al. 2020 start from a supervised baseline too): labellers write a good response for each
prompt (:mod:`rlcourse.world.demonstrations`), and the pretrained model is trained to imitate
them with :func:`rlcourse.rl.losses.sft_loss`, next-token cross-entropy on the **response tokens
only** (the prompt is given, not imitated). The same loss on every token (``response_only=False``)
also teaches the model to write the prompts — text nobody asked it to produce.

The training loop is the one that pretrained the model, :func:`rlcourse.model.pretraining.fit_causal_lm`
(AdamW, warm-up then cosine decay), fed demonstration batches and the SFT loss.

Glossary: B demonstrations per batch, L padded sequence length (prompt + response + EOS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlcourse.model import policy, pretraining
from rlcourse.rl import losses
from rlcourse.rl.masked import check_count
from rlcourse.utils import check as _check
from rlcourse.world.demonstrations import Demonstration

__all__ = ["SFTConfig", "encode_demonstrations", "demonstration_loss", "heldout_loss", "prompt_logprob", "train_sft"]


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on demonstrations (names as in TRL's SFTConfig where they exist)."""

    num_steps: int = 150  # optimizer steps
    batch_size: int = 32  # demonstrations per step, drawn in shuffled passes over the set
    lr: float = 1e-3  # peak AdamW learning rate (warm-up 5% of the steps, then cosine decay to 0)
    response_only: bool = True  # loss on response tokens and EOS only (TRL: completion_only_loss); False: every token
    seed: int = 0  # the order of the demonstrations


def _context(model) -> int | None:
    """The longest sequence ``model`` can read (Llama: max_position_embeddings; GPT-2: n_positions)."""
    return getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)


def _after_first_token(attention_mask: torch.Tensor) -> torch.Tensor:
    """1 on every real token of a left-padded row but its first (``<bos>``, which no logit predicts): ``(B, L)``."""
    return (attention_mask.long().cumsum(1) > 1).long()  # (B, L) the 2nd real token onwards


def encode_demonstrations(tokenizer, demos: list[Demonstration], response_only: bool = True,
                          max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Left-padded ``<bos> prompt response <eos>`` rows and the ``loss_mask`` :func:`~rlcourse.rl.losses.sft_loss` reads.

    ``loss_mask`` is 1 on the response tokens and EOS (``response_only``), or on every real
    token but ``<bos>`` (the first token, which no logit predicts).

    Returns:
        ``{"input_ids", "attention_mask", "loss_mask"}``, each ``(B, L)``.
    """
    _check(len(demos) > 0, "the demonstration set is empty: make some with demonstrations.make_demonstrations(prompts).")
    _check(all(isinstance(d, Demonstration) for d in demos),
           "demos must be a list of Demonstration(prompt, response); see rlcourse.world.demonstrations.")
    empty = [i for i, d in enumerate(demos) if not d.response.strip()]
    _check(not empty, f"demonstration {empty[0] if empty else 0} has an empty response, so there is nothing to imitate: "
                      "drop it or write a response.")
    enc = policy.encode_prompt_responses(tokenizer, [d.prompt for d in demos], [d.response for d in demos],
                                         max_length=max_length)
    loss_mask = enc["response_mask"] if response_only else _after_first_token(enc["attention_mask"])  # (B, L)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "loss_mask": loss_mask}


def demonstration_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`~rlcourse.rl.losses.sft_loss` of ``model`` on an :func:`encode_demonstrations` batch."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    logits = policy.model_logits(model, batch["input_ids"], batch["attention_mask"])  # (B, L, V)
    return losses.sft_loss(logits, batch["input_ids"], batch["loss_mask"])


def _batches(tokenizer, demos: list[Demonstration], config: SFTConfig, max_length: int | None):
    """``next_batch()`` for the training loop: shuffled passes over ``demos``, ``batch_size`` at a time."""
    generator = torch.Generator().manual_seed(config.seed)
    order: list[int] = []

    def next_batch() -> dict[str, torch.Tensor]:
        while len(order) < config.batch_size:
            order.extend(torch.randperm(len(demos), generator=generator).tolist())
        picked = [demos[order.pop(0)] for _ in range(config.batch_size)]
        return encode_demonstrations(tokenizer, picked, config.response_only, max_length)

    return next_batch


def train_sft(config: SFTConfig, model, tokenizer, demos: list[Demonstration], progress: bool = True) -> list[float]:
    """Fine-tune ``model`` in place (every parameter made trainable) on ``demos``; returns the loss of every step.

    Every demonstration is checked first (not empty, not longer than the model's context), so a
    bad one stops the run before any step rather than in the middle of it.
    """
    _check(isinstance(config, SFTConfig), f"config must be an SFTConfig, got {type(config).__name__}.")
    for name in ("num_steps", "batch_size"):
        check_count(name, getattr(config, name))
    max_length = _context(model)
    encode_demonstrations(tokenizer, demos, config.response_only, max_length)  # every row checked once, up front
    history, _ = pretraining.fit_causal_lm(model.requires_grad_(True), _batches(tokenizer, demos, config, max_length), config.num_steps,
                                           config.num_steps, config.lr, progress=progress, desc="SFT",
                                           loss_fn=demonstration_loss)
    return history


@torch.no_grad()
def heldout_loss(model, tokenizer, demos: list[Demonstration], response_only: bool = True, batch_size: int = 256) -> float:
    """The SFT loss (nats per imitated token) over ``demos``, one mean over all their tokens."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(demos), batch_size):
        batch = encode_demonstrations(tokenizer, demos[start:start + batch_size], response_only, _context(model))
        n = int(batch["loss_mask"][:, 1:].sum())
        total += float(demonstration_loss(model, batch)) * n
        count += n
    return total / count


@torch.no_grad()
def prompt_logprob(model, tokenizer, prompts: list[str]) -> float:
    """Mean log π(prompt | <bos>) per prompt token: how readily the model *writes* the prompts itself."""
    _check(len(prompts) > 0, "prompts is empty: pass at least one prompt.")
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]  # (B, P) left-padded <bos> prompt
    model.eval()
    logprobs = policy.token_logprobs(policy.model_logits(model, ids, mask)[:, :-1], ids[:, 1:])  # (B, P-1)
    keep = _after_first_token(mask)[:, 1:].float()  # (B, P-1) every prompt token after <bos>
    return float((logprobs * keep).sum() / keep.sum())
