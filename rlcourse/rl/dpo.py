"""Beyond PPO: best-of-N sampling and Direct Preference Optimization on preference pairs.

**Best-of-N** (Stiennon et al. 2020; Nakano et al. 2021): sample N responses, keep the one the
reward model likes best. No training at all; its distance from the policy is bounded by

    KL(π_BoN ‖ π) ≤ log N − (N − 1)/N                  (Beirami et al. 2024)

(with equality when the N samples never tie), so it is a cheap baseline every RL run should beat.

**DPO** (Rafailov et al. 2023) skips the reward model and the sampling loop: the implicit reward
``r̂(x, y) = β (log π_θ(y|x) − log π_ref(y|x))`` is fitted to the preference pairs with the
Bradley–Terry loss :func:`rlcourse.rl.losses.dpo_loss`. :func:`train_dpo` runs it on a
:class:`rlcourse.reward.reward_model.PreferenceDataset`.

Glossary: B prompts or pairs, N samples per prompt, L padded sequence length.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch

from rlcourse.model import policy
from rlcourse.reward import reward_model
from rlcourse.rl import losses
from rlcourse.world import rewards
from rlcourse.utils import check as _check
from rlcourse.utils import progress_bar

__all__ = [
    "best_of_n_kl_bound",
    "best_of_n_indices",
    "best_of_n_curve",
    "response_logprobs",
    "DPOConfig",
    "train_dpo",
]


# ----------------------------------------------------------------------------- best-of-N


def best_of_n_kl_bound(n: int) -> float:
    """``log n − (n − 1)/n``: the bound on the KL (nats) of best-of-n sampling from the policy it samples.

    With M equally likely distinct responses and no ties the KL tends to this value as M → ∞; for
    any finite M (any policy, Beirami et al. 2024) it is smaller: an upper bound, not the KL itself.

    Example:
        >>> best_of_n_kl_bound(1), round(best_of_n_kl_bound(2), 4)  # log 2 − ½
        (0.0, 0.1931)
    """
    _check(isinstance(n, int) and n >= 1, f"n must be an int >= 1, got {n!r}.")
    return math.log(n) - (n - 1) / n


def best_of_n_indices(scores: torch.Tensor, n: int) -> torch.Tensor:
    """For each prompt, the index of the best of its first ``n`` samples (first one on ties).

    Args:
        scores: ``(B, N)`` proxy rewards, N samples per prompt, N ≥ n.

    Returns:
        ``(B,)`` indices in ``[0, n)``.

    Example:
        >>> best_of_n_indices(torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8]]), n=2)
        tensor([1, 0])
    """
    _check(isinstance(scores, torch.Tensor) and scores.dim() == 2,
           f"scores must be a (B, N) tensor, one row of sample scores per prompt, got {getattr(scores, 'shape', scores)}.")
    _check(isinstance(n, int) and 1 <= n <= scores.shape[1], f"n must be an int in [1, {scores.shape[1]}], got {n!r}.")
    return scores[:, :n].argmax(dim=1)  # (B,)


@torch.no_grad()
def best_of_n_curve(model, tokenizer, prompts: list[str], ns: list[int], proxy_fn: Callable[[list[str]], torch.Tensor],
                    gold_fn: Callable[[list[str]], torch.Tensor] = rewards.gold_reward, max_new_tokens: int = 24,
                    generator: torch.Generator | None = None) -> list[dict]:
    """Best-of-n for several n on the same samples: the proxy and gold reward of the picked responses.

    Samples ``max(ns)`` responses per prompt once; best-of-n uses the first n of them, so the
    points of the curve share their samples (less noise between them).

    Returns:
        one dict per n: ``{"n", "proxy", "gold", "kl_bound", "texts"}`` with the mean proxy and
        gold rewards of the picked full texts and :func:`best_of_n_kl_bound`.
    """
    _check(len(ns) > 0 and all(isinstance(n, int) and n >= 1 for n in ns), f"ns must be ints >= 1, got {ns!r}.")
    B, N = len(prompts), max(ns)
    gen = policy.generate(model, tokenizer, [p for p in prompts for _ in range(N)], max_new_tokens, generator=generator)
    texts = gen.full_texts()  # B·N, each prompt's N samples contiguous
    proxy = proxy_fn(texts).float().reshape(B, N)  # (B, N)
    gold = gold_fn(texts).float().reshape(B, N)  # (B, N)
    rows = []
    for n in ns:
        idx = best_of_n_indices(proxy, n)  # (B,)
        picked = torch.arange(B)
        rows.append({"n": n, "proxy": proxy[picked, idx].mean().item(), "gold": gold[picked, idx].mean().item(),
                     "kl_bound": best_of_n_kl_bound(n), "texts": [texts[b * N + int(i)] for b, i in enumerate(idx)]})
    return rows


# ----------------------------------------------------------------------------- DPO


def _split(prompt: str, text: str) -> str:
    _check(text.startswith(prompt), f"the text {text[:40]!r}… does not start with its prompt {prompt!r}; "
                                    "pass full texts (prompt + response) as a PreferenceDataset holds them.")
    return text[len(prompt):].strip()


def encode_pairs(tokenizer, prompts: list[str], texts: list[str],
                 truncated: frozenset[str] = frozenset()) -> dict[str, torch.Tensor]:
    """Left-padded ``<bos> prompt response <eos>`` ids with a mask on the response tokens (EOS included).

    The EOS is appended as TRL's DPOTrainer does, so the policy also learns where to stop — but
    only to responses that ended: a text in ``truncated`` (cut off at ``max_new_tokens``) gets none,
    else DPO would teach the policy to stop mid-sentence.

    Returns:
        ``{"input_ids", "attention_mask", "response_mask"}``, each ``(B, L)``.
    """
    responses = [_split(prompt, text) for prompt, text in zip(prompts, texts)]
    return policy.encode_prompt_responses(tokenizer, prompts, responses, ended=[t not in truncated for t in texts])


def response_logprobs(model, tokenizer, prompts: list[str], texts: list[str],
                      truncated: frozenset[str] = frozenset()) -> torch.Tensor:
    """``log π(y|x)`` of each full text's response given its prompt, summed over the response tokens and EOS.

    A text in ``truncated`` has no EOS (:func:`encode_pairs`): its sum stops at the last token.

    Returns:
        ``(B,)``, differentiable with respect to the model's parameters.
    """
    _check(len(prompts) == len(texts) > 0, f"prompts and texts must pair up, got {len(prompts)} and {len(texts)}.")
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in encode_pairs(tokenizer, prompts, texts, truncated).items()}
    return policy.sequence_logprob(model, enc["input_ids"], enc["attention_mask"], enc["response_mask"])  # (B,)


@dataclass(frozen=True)
class DPOConfig:
    """DPO (Rafailov et al. 2023) on preference pairs; names as in TRL's DPOConfig."""

    beta: float = 0.1  # β: strength of the implicit KL(π‖π_ref) constraint
    lr: float = 5e-4  # AdamW learning rate
    num_epochs: int = 2  # passes over the pairs
    batch_size: int = 32  # pairs per step
    max_grad_norm: float = 1.0  # gradient clipping
    seed: int = 0  # shuffling


def train_dpo(config: DPOConfig, model, tokenizer, dataset: reward_model.PreferenceDataset, ref_model=None,
              progress: bool = True) -> list[dict]:
    """Minimise :func:`rlcourse.rl.losses.dpo_loss` over the pairs with AdamW; the model is trained in place.

    The reference log-probs are computed once, before training (π_ref is frozen).

    Args:
        config: a :class:`DPOConfig`.
        model, tokenizer: the policy (also the reference, copied, when ``ref_model`` is None); every
            parameter is made trainable (a copy of a frozen reference would otherwise never move).
        dataset: the preference pairs (full texts: prompt + response).

    Returns:
        one dict per step: ``{"step", "loss", "rewards/chosen", "rewards/rejected",
        "rewards/margins", "rewards/accuracies"}`` (TRL's DPO metric names).
    """
    _check(isinstance(config, DPOConfig), f"config must be a DPOConfig, got {type(config).__name__}.")
    _check(isinstance(dataset, reward_model.PreferenceDataset) and len(dataset) > 0,
           "dataset must be a non-empty PreferenceDataset; make one with reward_model.make_preference_dataset.")
    ref_model = ref_model if ref_model is not None else copy.deepcopy(model)
    ref_model.eval().requires_grad_(False)
    with torch.no_grad():
        ref_chosen = response_logprobs(ref_model, tokenizer, dataset.prompts, dataset.chosen, dataset.truncated)  # (P,)
        ref_rejected = response_logprobs(ref_model, tokenizer, dataset.prompts, dataset.rejected, dataset.truncated)  # (P,)
    optimizer = torch.optim.AdamW(model.requires_grad_(True).parameters(), lr=config.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    history = []
    model.train()
    bar = progress_bar(total=config.num_epochs * steps_per_epoch, desc="DPO", disable=not progress)
    for _ in range(config.num_epochs):
        for idx in torch.randperm(len(dataset), generator=generator).split(config.batch_size):
            pick = lambda xs: [xs[i] for i in idx.tolist()]  # noqa: E731
            prompts = pick(dataset.prompts)
            chosen = response_logprobs(model, tokenizer, prompts, pick(dataset.chosen), dataset.truncated)  # (b,)
            rejected = response_logprobs(model, tokenizer, prompts, pick(dataset.rejected), dataset.truncated)  # (b,)
            loss, stats = losses.dpo_loss(chosen, rejected, ref_chosen[idx], ref_rejected[idx], config.beta)
            if not torch.isfinite(loss):
                model.eval()
                bar.close()
                raise ValueError(f"the DPO loss became {loss.item()} at step {len(history)}; lower lr (now {config.lr}).")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            history.append({"step": len(history), "loss": loss.item(), **{k: float(v) for k, v in stats.items()}})
            bar.update(1)
    bar.close()
    model.eval()
    return history
