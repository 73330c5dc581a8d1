"""The RL fine-tuning loop, top to bottom: rollout → score → advantages → update.

One iteration of every algorithm here::

    prompts ──rollout──► responses, log π_old ──score──► per-token rewards r_t
        (score at the last response token; −β·KL_t on every token where the KL goes in the reward)
    ──advantages──► A    (REINFORCE / RLOO: one A_i per response, a leave-one-out baseline ·
                          GRPO: group-normalised score · PPO: GAE on a value head, per token)
    ──update──► θ   (minibatches × epochs, gradient clipping; GRPO adds β·k3 KL to the loss)

What differs between the algorithms is written once, in the table ``ALGORITHMS`` (how the
advantages are computed, which policy loss, where the KL penalty enters, whether there is a
value head); each has its own frozen config dataclass (change values with
``dataclasses.replace``). ``train`` runs the loop and returns a history of metric dicts named
like TRL's (``objective/kl``, ``objective/rlhf_reward``, ``policy/clipfrac_avg``, ``val/ratio``
…), plus ``gold/*`` metrics that always measure the transparent gold reward, whatever the
policy trains on.

Glossary: B prompts per step, G samples per prompt, N = B·G sequences, T response tokens.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from rlcourse.model import policy
from rlcourse.reward import verifiers
from rlcourse.rl import advantages as adv
from rlcourse.rl import losses
from rlcourse.rl.masked import check_count, check_float, check_mask, check_number, masked_mean, masked_var
from rlcourse.utils import progress_bar
from rlcourse.world import arith, grammar, rewards


class TrainingDivergedError(RuntimeError):
    """A loss or metric became NaN/inf or exploded; training stopped."""


# ----------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class LoopConfig:
    """Fields every algorithm shares."""

    num_steps: int = 50  # RL iterations (one rollout batch each)
    num_prompts: int = 16  # B: prompts per iteration
    group_size: int = 4  # G: samples per prompt (N = B·G sequences per iteration)
    max_new_tokens: int = 32  # T: longest response
    temperature: float = 1.0  # sampling temperature during rollouts
    lr: float = 5e-4  # AdamW learning rate for θ
    kl_coef: float = 0.05  # β: weight of the KL(π‖π_ref) penalty
    max_grad_norm: float = 1.0  # gradient clipping
    num_epochs: int = 1  # passes over each rollout batch
    num_minibatches: int = 1  # minibatches per epoch
    dense: bool = False  # per-token gold rewards instead of one score at the end
    gamma: float = 1.0  # discount of future rewards (PPO's GAE, and REINFORCE/RLOO with reward_to_go)
    reward_to_go: bool = False  # REINFORCE/RLOO only: per-token G_t with a per-position baseline (see below)
    task: str = "review"  # "review" or "story": which prompts to continue; "arith": arithmetic problems (rlcourse.world.arith)
    loss_aggregation: str = "token_mean"  # how per-token losses are averaged: losses.AGGREGATIONS
    missing_eos_penalty: float | None = None  # subtracted from the score of a response cut at max_new_tokens (TRL's name)
    seed: int = 0
    explode_threshold: float = 1e4  # |loss| above this stops training


@dataclass(frozen=True)
class ReinforceConfig(LoopConfig):
    """REINFORCE with a baseline (Williams 1992): the whole response is one action, its reward
    R_i = score_i − β·Σ_t KL_t, and A_i = R_i − mean_{j≠i} R_j over the other responses of the
    batch (leave-one-out, so the baseline does not depend on y_i and the gradient stays
    unbiased). The same A_i on every response token.

    ``reward_to_go=True`` is a token-level variant, not the paper's default: A_{i,t} = G_{i,t} −
    mean_{j≠i} G_{j,t}, with G_t the γ-discounted reward-to-go and the baseline taken per
    position (notebook 03 uses it to study discounting and per-token rewards)."""


@dataclass(frozen=True)
class RLOOConfig(LoopConfig):
    """REINFORCE leave-one-out (Ahmadian et al. 2024, "Back to Basics"; TRL's RLOOTrainer): the
    whole response is one action, R_i = score_i − β·Σ_t KL_t, and A_i = R_i − mean_{j≠i} R_j over
    the other G−1 samples of the same prompt; the same A_i on every response token.

    ``reward_to_go=True``: the token-level variant of :class:`ReinforceConfig`, with the
    per-position baseline taken over the other samples of the same prompt."""


@dataclass(frozen=True)
class GRPOConfig(LoopConfig):
    """GRPO (Shao et al. 2024): group-normalised score as every token's advantage, k3 KL in the loss."""

    clip_eps: float = 0.2  # ε of the clipped surrogate
    kl_coef: float = 0.02  # β of the k3 KL loss term (not a reward penalty, unlike PPO)
    clip_eps_high: float | None = None  # ε_high of DAPO's clip-higher (None: ε)
    scale_rewards: bool = True  # divide group advantages by the group std (False: Dr. GRPO)
    process: bool = False  # process supervision (§4.1.3 of the paper): per-step rewards, task "arith" only


@dataclass(frozen=True)
class PPOConfig(LoopConfig):
    """PPO with a value head, GAE and KL-penalised rewards (Schulman et al. 2017; Ziegler et al. 2019)."""

    clip_eps: float = 0.2  # ε of the clipped surrogate
    lam: float = 0.95  # λ of GAE
    vf_coef: float = 0.1  # weight of the value loss
    cliprange_value: float = 0.2  # clip of the value update
    num_epochs: int = 4  # PPO epochs per rollout batch
    num_minibatches: int = 2
    value_warmup_steps: int = 0  # first steps train only the value head (the policy and its backbone stay fixed)
    adaptive_kl: bool = False  # adapt β towards target_kl (Ziegler et al. 2019)
    target_kl: float = 2.0  # target of Σ_t KL per sequence, in nats
    kl_horizon: int = 100  # gain 1/kl_horizon: each step β changes by (KL/target − 1, clipped to ±0.2)/kl_horizon


# ----------------------------------------------------------------------------- pieces


@dataclass
class Batch:
    """One iteration's data; every tensor is (N, T) response-aligned unless noted."""

    gen: policy.Generation
    old_logprobs: torch.Tensor  # log π_old(a_t|s_t), from the sampling pass
    ref_logprobs: torch.Tensor  # log π_ref(a_t|s_t), frozen reference model
    mask: torch.Tensor  # 1 on response tokens
    scores: torch.Tensor = None  # (N,) the reward model's / gold score of each response
    rewards: torch.Tensor = None  # per-token rewards, KL penalty included
    advantages: torch.Tensor = None  # (N, T) or (N,)
    returns: torch.Tensor = None
    values: torch.Tensor = None
    step_rewards: torch.Tensor = None  # (N, T) process rewards at step ends (GRPO with process=True)
    step_mask: torch.Tensor = None  # (N, T) 1 where a step ends


class ValueHead(torch.nn.Module):
    """V(s_t): a linear layer on the policy's last hidden state (shared backbone, as in TRL's PPO)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden).squeeze(-1)  # (N, T, H) -> (N, T)


def forward_response(model, gen: policy.Generation, value_head: ValueHead | None = None, entropy: bool = True,
                     detach_values: bool = False):
    """One forward pass over prompt+response: log π (N, T), entropy (N, T) or None, and V (N, T) or None.

    Only the logits that score response tokens are computed (``logits_to_keep``); the entropy is
    a statistic to watch, computed without a gradient (``entropy=False`` skips it).
    ``detach_values``: the value head reads the hidden states without a gradient into the backbone.
    """
    T = gen.response_ids.shape[1]
    out = policy.forward(model, gen.input_ids, gen.attention_mask, output_hidden_states=value_head is not None,
                         logits_to_keep=T + 1)
    logits = out.logits[:, :-1].float()  # (N, T, V): position t-1 predicts token t
    if entropy:  # one log-softmax for both
        logprobs, entropies = policy.token_logprobs_and_entropy(logits, gen.response_ids)  # (N, T) each
    else:
        logprobs, entropies = policy.token_logprobs(logits, gen.response_ids), None  # (N, T)
    hidden = out.hidden_states[-1][:, -T - 1 : -1] if value_head is not None else None  # (N, T, H) state before token t
    values = value_head(hidden.detach() if detach_values else hidden) if value_head is not None else None
    return logprobs, entropies, values


TASKS = ("review", "story", "arith")


def task_prompts(config: LoopConfig, step: int) -> list[str]:
    """B prompts for this step, each repeated G times in a row (a group)."""
    seed = config.seed * 100_003 + step
    if config.task == "arith":
        prompts = [p.text for p in arith.sample_problems(config.num_prompts, seed=seed, split="train")]
    else:
        draw = grammar.review_prompts if config.task == "review" else grammar.story_prompts
        prompts = draw(config.num_prompts, seed=seed)
    return [p for p in prompts for _ in range(config.group_size)]


@torch.no_grad()
def rollout(model, ref_model, tokenizer, prompts: list[str], config: LoopConfig, generator: torch.Generator) -> Batch:
    """Sample responses and record log π_old and log π_ref on them.

    ``ref_model=None`` skips the reference pass (``ref_logprobs`` is then None): what ``train`` does
    for GRPO with β = 0, whose loss never reads π_ref (TRL likewise loads no reference model then).
    """
    model.eval()
    gen = policy.generate(model, tokenizer, prompts, config.max_new_tokens, config.temperature, 0, generator)
    mask = gen.response_mask.float()  # (N, T)
    if ref_model is None:
        return Batch(gen, gen.logprobs * mask, None, mask)
    ref_logprobs, _, _ = forward_response(ref_model, gen, entropy=False)
    return Batch(gen, gen.logprobs * mask, ref_logprobs * mask, mask)


def kl_penalized_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float,
    task_rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token rewards of RLHF with PPO: ``r_t = −β (log π − log π_ref)_t``, plus the score on the last token.

    The KL penalty (k1) on every response token, and the reward model's score of the whole
    response added at its last token (Ziegler et al. 2019; TRL's PPO). Padding gets 0. With
    ``task_rewards`` (dense rewards, e.g. :func:`rlcourse.world.rewards.gold_response_token_rewards`)
    those replace the score at the end. hw3's ``kl_penalized_rewards`` is graded against this.

    Args:
        scores: ``(B,)`` one score per response.
        logprobs, ref_logprobs: ``(B, T)`` log-probs of the sampled tokens under π and π_ref.
        mask: ``(B, T)``, 1 on response tokens (a prefix of each row).
        kl_coef: ``β ≥ 0``.
        task_rewards: ``(B, T)`` per-token task rewards instead of ``scores`` at the end, or ``None``.

    Example:
        >>> kl_penalized_rewards(torch.tensor([1.0]), torch.tensor([[-1.0, -1.0, 0.0]]),
        ...                      torch.tensor([[-2.0, -1.0, 0.0]]), torch.tensor([[1, 1, 0]]), 0.5)
        tensor([[-0.5000,  1.0000,  0.0000]])
    """
    check_float("logprobs", logprobs, ranks=(2,), layout="(B, T)")
    check_mask(mask, logprobs, "logprobs", prefix=True)
    check_number("kl_coef", kl_coef, 0.0)
    mask = mask.to(logprobs.dtype)  # (B, T)
    kl = losses.kl_k1(logprobs, ref_logprobs) * mask  # (B, T) k1 per token
    if task_rewards is None:
        last = (mask.sum(1).long() - 1).clamp(min=0)  # (B,) index of the last response token
        task_rewards = torch.zeros_like(mask).scatter(1, last[:, None], scores.to(mask.dtype)[:, None])  # (B, T)
    return task_rewards - kl_coef * kl  # (B, T)


def score(batch: Batch, reward_fn: Callable[[list[str]], torch.Tensor], config: LoopConfig, kl_coef: float,
          tokenizer=None) -> Batch:
    """Per-token rewards (:func:`kl_penalized_rewards`): r_t = −β·(log π_old − log π_ref)_t, plus the score
    at the last response token.

    With ``config.dense`` the gold reward is spread over the tokens that earned it
    (:func:`_dense_rewards`) instead of arriving only at the end. With
    ``config.missing_eos_penalty`` a response cut off at ``max_new_tokens`` (no EOS: truncated, not
    terminated) has that much subtracted from its score (TRL's ``missing_eos_penalty``). With
    ``config.process`` (GRPO, task "arith") each step's reward is also recorded at the step's last
    token (:func:`rlcourse.reward.verifiers.arith_step_rewards`; needs the ``tokenizer``).
    """
    gen, mask = batch.gen, batch.mask
    batch.scores = reward_fn(gen.full_texts()).float()  # (N,)
    if config.missing_eos_penalty is not None:  # truncated, not terminated: the response never ended
        batch.scores = batch.scores - config.missing_eos_penalty * (~gen.finished).float()
    if getattr(config, "process", False):
        if tokenizer is None:
            raise ValueError("process rewards are placed on tokens: pass the tokenizer to loops.score.")
        batch.step_rewards, batch.step_mask = verifiers.arith_step_rewards(gen, tokenizer)
    dense = _dense_rewards(gen, mask, config) if config.dense else None
    ref_logprobs = batch.old_logprobs if batch.ref_logprobs is None else batch.ref_logprobs  # no reference: no KL
    if batch.ref_logprobs is None and kl_coef > 0:
        raise ValueError("a KL penalty needs the reference log-probs: roll out with a ref_model.")
    batch.rewards = kl_penalized_rewards(batch.scores, batch.old_logprobs, ref_logprobs, mask, kl_coef,
                                         task_rewards=dense)  # (N, T)
    return batch


def _dense_rewards(gen: policy.Generation, mask: torch.Tensor, config: LoopConfig) -> torch.Tensor:
    """The gold reward per response token (:func:`rlcourse.world.rewards.gold_response_token_rewards`), (N, T).

    Aligned with ``mask``: a finished response's ``<eos>`` is its last masked position and carries
    what the finished text still owes (``gold − Φ``), as the sparse score sits on that same token;
    a response cut off without ``<eos>`` has it on its last word, and there also the
    ``missing_eos_penalty`` when one is set, so ``Σ_t r_t`` equals the sparse score in every case.
    """
    dense = rewards.gold_response_token_rewards(gen.prompts, gen.texts, mask.shape[1], finished=gen.finished)
    if config.missing_eos_penalty is not None:  # the same penalty the sparse score gets, where the cut happens
        last = (mask.sum(1).long() - 1).clamp(min=0)  # (N,) last response token
        cut = (~gen.finished).to(dense.dtype) * config.missing_eos_penalty  # (N,)
        dense = dense.scatter_add(1, last[:, None], -cut[:, None])
    return dense * mask  # (N, T)


def sequence_rewards(batch: Batch) -> torch.Tensor:
    """R_i = Σ_t r_t: the score minus β·Σ_t KL_t (with dense rewards: their sum, the same score), (N,)."""
    return (batch.rewards * batch.mask).sum(1)


def _leave_one_out(batch: Batch, config: LoopConfig, group_size: int) -> torch.Tensor:
    """R_i − mean_{j≠i} R_j over groups of ``group_size`` (N,); with ``reward_to_go``, G_t per position (N, T)."""
    if config.reward_to_go:
        returns = adv.discounted_returns(batch.rewards, batch.mask, config.gamma)  # (N, T), 0 after the end
        return adv.leave_one_out_advantages(returns, group_size) * batch.mask  # (N, T)
    return adv.leave_one_out_advantages(sequence_rewards(batch), group_size)  # (N,)


def reinforce_advantages(batch: Batch, config: LoopConfig, model=None, value_head=None) -> torch.Tensor:
    """REINFORCE: the baseline is the mean reward of the other N−1 responses of the batch."""
    return _leave_one_out(batch, config, group_size=batch.mask.shape[0])


def rloo_advantages(batch: Batch, config: LoopConfig, model=None, value_head=None) -> torch.Tensor:
    """RLOO: the baseline is the mean reward of the other G−1 samples of the same prompt."""
    return _leave_one_out(batch, config, group_size=config.group_size)


def grpo_advantages(batch: Batch, config: LoopConfig, model=None, value_head=None) -> torch.Tensor:
    """GRPO: the score normalised within its group, (R_i − mean) / (std + 1e-4), (N,); without the std
    with ``scale_rewards=False`` (Dr. GRPO). With ``process=True``: per token (N, T), the sum of the
    group-normalised rewards of the steps still ahead (:func:`rlcourse.rl.advantages.process_group_advantages`)."""
    if config.process:
        return adv.process_group_advantages(batch.step_rewards, batch.step_mask, batch.mask, config.group_size)
    return adv.group_advantages(batch.scores, config.group_size, scale=config.scale_rewards)


def ppo_advantages(batch: Batch, config: LoopConfig, model=None, value_head=None) -> torch.Tensor:
    """PPO: whitened GAE(γ, λ) on the value head's V(s_t), per token (N, T); stores values and returns."""
    with torch.no_grad():
        _, _, values = forward_response(model, batch.gen, value_head, entropy=False)
    batch.values = values * batch.mask
    advantages, batch.returns = adv.gae(batch.rewards, batch.values, batch.mask, config.gamma, config.lam)
    return adv.whiten(advantages, batch.mask)


@dataclass(frozen=True)
class Algorithm:
    """What one algorithm does at each stage of the loop; ``ALGORITHMS`` holds the four."""

    advantages: Callable  # (batch, config, model, value_head) -> (N,) one per response, or (N, T) per token
    clipped: bool  # PPO's clipped surrogate on the ratio π_θ/π_old (else the REINFORCE loss, −A·log π)
    kl_in_reward: bool  # −β·k1 in each token's reward (else β·k3 added to the loss, GRPO)
    value_head: bool  # learn V(s_t) with a value loss
    needs_groups: bool  # compares the G samples of one prompt (group_size ≥ 2)
    paper: str


ALGORITHMS: dict[type, Algorithm] = {
    ReinforceConfig: Algorithm(reinforce_advantages, clipped=False, kl_in_reward=True, value_head=False,
                               needs_groups=False, paper="Williams 1992"),
    RLOOConfig: Algorithm(rloo_advantages, clipped=False, kl_in_reward=True, value_head=False,
                          needs_groups=True, paper="Ahmadian et al. 2024"),
    GRPOConfig: Algorithm(grpo_advantages, clipped=True, kl_in_reward=False, value_head=False,
                          needs_groups=True, paper="Shao et al. 2024"),
    PPOConfig: Algorithm(ppo_advantages, clipped=True, kl_in_reward=True, value_head=True,
                         needs_groups=False, paper="Schulman et al. 2017; Ziegler et al. 2019"),
}


def algorithm(config: LoopConfig) -> Algorithm:
    """The row of ``ALGORITHMS`` for this config (its exact class), with a clear error otherwise."""
    if type(config) not in ALGORITHMS:
        names = ", ".join(cls.__name__ for cls in ALGORITHMS)
        raise ValueError(f"config must be one of {names}, got {type(config).__name__}.")
    return ALGORITHMS[type(config)]


def compute_advantages(batch: Batch, config: LoopConfig, model=None, value_head=None) -> Batch:
    """The algorithm's advantages: (N,) one per response (the same on its every token) or (N, T)."""
    batch.advantages = algorithm(config).advantages(batch, config, model, value_head)
    return batch


def policy_loss(config: LoopConfig, batch_slice: dict, logprobs: torch.Tensor, entropy: torch.Tensor):
    """The algorithm's loss on a minibatch, and its stats."""
    algo, mask, A = algorithm(config), batch_slice["mask"], batch_slice["advantages"]
    if algo.clipped:
        loss, stats = losses.ppo_clip_loss(logprobs, batch_slice["old_logprobs"], A, mask, config.clip_eps,
                                           getattr(config, "clip_eps_high", None), config.loss_aggregation,
                                           config.max_new_tokens)
    else:
        loss = losses.reinforce_loss(logprobs, A, mask, config.loss_aggregation, config.max_new_tokens)
        ratio = torch.exp(logprobs - batch_slice["old_logprobs"]).detach()
        stats = {"clipfrac": torch.tensor(0.0), "approx_kl": masked_mean((ratio - 1) - ratio.log(), mask),
                 "ratio_mean": masked_mean(ratio, mask), "ratio_var": masked_var(ratio, mask, unbiased=False)}
    if not algo.kl_in_reward and config.kl_coef > 0:
        # GRPO: β·k3 joins each token's loss, so the whole per-token loss is averaged one way (Shao et al. 2024;
        # TRL). Every aggregation is linear in the per-token values: aggregating the KL alone and adding it is
        # the same. As a loss, k3's gradient is that of KL(π_ref‖π), not KL(π‖π_ref) (notebook 04).
        kl = losses.aggregate_loss(losses.kl_k3(logprobs, batch_slice["ref_logprobs"]), mask,
                                   config.loss_aggregation, config.max_new_tokens)
        loss = loss + config.kl_coef * kl
    return loss, stats


def update(model, value_head, optimizer, batch: Batch, config: LoopConfig, generator: torch.Generator,
           value_only: bool = False) -> dict:
    """Minibatch epochs of gradient steps on the rollout batch; returns averaged stats.

    ``value_only`` (PPO's value warm-up): only the value head learns, on the backbone's detached
    hidden states, and the policy loss is reported but not applied.
    """
    model.train()
    N = batch.mask.shape[0]
    fields = {k: getattr(batch, k) for k in ("old_logprobs", "ref_logprobs", "mask", "advantages", "returns", "values")}
    totals: dict[str, list[float]] = {}
    for _ in range(config.num_epochs):
        order = torch.randperm(N, generator=generator)
        for idx in order.chunk(config.num_minibatches):
            mb = {k: v[idx] if v is not None else None for k, v in fields.items()}
            mb_gen = _slice_generation(batch.gen, idx)
            logprobs, entropy, values = forward_response(model, mb_gen, value_head, detach_values=value_only)
            loss, stats = policy_loss(config, mb, logprobs, entropy)
            if value_only:
                loss = loss.detach()
            stats = {"loss/policy_avg": loss.detach(), "policy/clipfrac_avg": stats["clipfrac"],
                     "policy/approxkl_avg": stats["approx_kl"], "val/ratio": stats["ratio_mean"],
                     "val/ratio_var": stats["ratio_var"]}
            if value_head is not None:
                vloss, vstats = losses.value_loss(values, mb["values"], mb["returns"], mb["mask"], config.cliprange_value)
                loss = loss + config.vf_coef * vloss
                stats.update({"loss/value_avg": vloss.detach(), "val/clipfrac_avg": vstats["clipfrac"]})
            stats["policy/entropy_avg"] = masked_mean(entropy.detach(), mb["mask"])
            optimizer.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
            params = [p for group in optimizer.param_groups for p in group["params"]]
            stats["policy/grad_norm"] = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            for k, v in stats.items():
                totals.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in totals.items()}


def _slice_generation(gen: policy.Generation, idx: torch.Tensor) -> policy.Generation:
    pick = lambda xs: [xs[i] for i in idx.tolist()]  # noqa: E731
    return policy.Generation(gen.prompt_ids[idx], gen.prompt_mask[idx], gen.response_ids[idx],
                             gen.response_mask[idx], gen.logprobs[idx], pick(gen.prompts), pick(gen.texts),
                             gen.eos_token_id)


@dataclass
class AdaptiveKLController:
    """β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon) (Ziegler et al. 2019, as in TRL's PPO)."""

    kl_coef: float
    target: float
    horizon: int

    def update(self, kl: float, n_steps: int = 1) -> float:
        error = max(-0.2, min(0.2, kl / self.target - 1))
        self.kl_coef *= 1 + error * n_steps / self.horizon
        return self.kl_coef


# ----------------------------------------------------------------------------- the loop


def diagnostics(batch: Batch, kl_coef: float, task: str = "review") -> dict:
    """What to watch, with TRL's names: reward, KL, entropy, length, and the gold reward.

    For the task "arith" the gold metrics are the verifier's: ``arith/correct`` (share of right final
    answers), ``arith/valid_steps`` and the mean length of right and of wrong responses.
    """
    mask = batch.mask
    lengths = mask.sum(1)  # (N,)
    metrics = {"objective/scores": batch.scores.mean().item()}
    if batch.ref_logprobs is not None:  # (GRPO with β = 0 has no reference pass, so no KL to report)
        kl_seq = (losses.kl_k1(batch.old_logprobs, batch.ref_logprobs) * mask).sum(1)  # (N,) Σ_t KL
        metrics.update({
            "objective/kl": kl_seq.mean().item(),
            "objective/kl_k3": (losses.kl_k3(batch.old_logprobs, batch.ref_logprobs) * mask).sum(1).mean().item(),
            "objective/non_score_reward": (-kl_coef * kl_seq).mean().item(),
            "objective/rlhf_reward": (batch.scores - kl_coef * kl_seq).mean().item(),
        })
    metrics["objective/entropy"] = (-(batch.old_logprobs) * mask).sum(1).mean().item()
    if batch.values is not None and batch.returns is not None:  # PPO: how much the critic knows
        metrics["val/var_explained"] = explained_variance(batch.values, batch.returns, mask)
    if task == "arith":
        grades = [arith.grade_response(arith.Problem.from_text(p), t) for p, t in zip(batch.gen.prompts, batch.gen.texts)]
        right = torch.tensor([g.correct for g in grades])
        metrics.update({
            "arith/correct": right.float().mean().item(),
            "arith/valid_steps": sum(sum(g.steps) for g in grades) / max(1, sum(len(g.steps) for g in grades)),
            "response/length_correct": lengths[right].mean().item() if right.any() else float("nan"),
            "response/length_wrong": lengths[~right].mean().item() if (~right).any() else float("nan"),
        })
    else:
        texts = batch.gen.full_texts()
        metrics["gold/reward"] = rewards.gold_reward(texts).mean().item()
        metrics["gold/grammatical"] = sum(map(grammar.is_grammatical, texts)) / len(texts)
    return {**metrics, "response/length": lengths.mean().item(),
            "response/truncated": (~batch.gen.finished).float().mean().item(), "kl_coef": kl_coef}


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) over response tokens: the share of the returns' variance the critic predicts.

    1 is a perfect critic, 0 one no better than a constant (e.g. a value head that never learned),
    below 0 one worse than a constant. Measured on the rollout's values, before the update, as
    Stable-Baselines3 (``train/explained_variance``) and CleanRL (``losses/explained_variance``) log
    it. NaN when the returns do not vary.
    """
    var_returns = masked_var(returns, mask, unbiased=False).item()
    if var_returns == 0:
        return float("nan")
    return 1.0 - masked_var(returns - values, mask, unbiased=False).item() / var_returns


def _check_finite(step: int, metrics: dict, threshold: float) -> None:
    for name, value in metrics.items():
        if name.startswith("response/length_") or name == "val/var_explained":  # NaN when undefined (see each)
            continue
        if not math.isfinite(value) or (name.startswith("loss/") and abs(value) > threshold):
            raise TrainingDivergedError(
                f"Training stopped at step {step}: {name} = {value:.4g} is {'not finite' if not math.isfinite(value) else 'exploding'}; "
                "lower the learning rate or raise kl_coef, and check the reward function for NaNs."
            )


def train(config: LoopConfig, model=None, tokenizer=None, reward_fn=None, ref_model=None,
          device: str | torch.device | None = None, progress: bool = True) -> dict:
    """Run ``config.num_steps`` RL iterations; returns ``{"history", "model", "value_head", ...}``.

    Args:
        config: one of ReinforceConfig, RLOOConfig, GRPOConfig, PPOConfig.
        model, tokenizer: the policy to train (default: a fresh copy of the shipped tiny model).
            The model is trained in place, every parameter made trainable (a copy of a frozen
            reference would otherwise silently never move).
        reward_fn: texts -> (N,) scores; default ``rewards.gold_reward``. Pass a reward model
            scorer to train on a learned proxy (``gold/*`` metrics still report the gold reward).
        ref_model: the frozen reference π_ref (default: a copy of ``model`` before training).
        device: "cpu" or "cuda"; default CUDA when present.
    """
    from rlcourse.model import loading, runtime

    algo = algorithm(config)
    if algo.needs_groups and config.group_size < 2:
        raise ValueError(f"{type(config).__name__} compares samples of the same prompt: group_size must be ≥ 2, got {config.group_size}.")
    if config.reward_to_go and algo.advantages not in (reinforce_advantages, rloo_advantages):
        raise ValueError(f"reward_to_go is a REINFORCE/RLOO option; {type(config).__name__} has its own per-token "
                         "(PPO: GAE) or per-response (GRPO) advantages: leave it False.")
    if config.gamma != 1.0 and not (algo.value_head or config.reward_to_go):
        raise ValueError(f"{type(config).__name__} scores each response as one action, so gamma={config.gamma} would do "
                         "nothing: set reward_to_go=True (REINFORCE/RLOO) to discount per-token rewards, or keep gamma=1.")
    if config.task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {config.task!r}.")
    if config.loss_aggregation not in losses.AGGREGATIONS:
        raise ValueError(f"loss_aggregation must be one of {', '.join(losses.AGGREGATIONS)}, got {config.loss_aggregation!r}.")
    for name in ("num_prompts", "num_steps", "max_new_tokens"):
        check_count(name, getattr(config, name))
    if not config.temperature > 0:
        raise ValueError(f"temperature must be > 0 for RL, got {config.temperature!r}: the loop learns from sampled "
                         "responses and their log-probs, and temperature 0 (greedy) samples one response per prompt.")
    if getattr(config, "process", False) and config.task != "arith":
        raise ValueError("process=True needs step rewards, which only the task 'arith' has: set task='arith'.")
    if config.dense and config.task == "arith":
        raise ValueError("dense=True spreads the review's gold reward over tokens; for the task 'arith' use "
                         "GRPOConfig(process=True) for step-level rewards.")
    device = torch.device(device) if device is not None else runtime.default_device()
    torch.manual_seed(config.seed)
    if model is None:
        model, tokenizer = loading.load_math_policy() if config.task == "arith" else loading.load_policy()
    model.to(device).requires_grad_(True)
    ref_model = (ref_model or copy.deepcopy(model)).to(device).eval().requires_grad_(False)
    reward_fn = reward_fn or (arith.answer_reward if config.task == "arith" else rewards.gold_reward)
    value_head = ValueHead(model.config.hidden_size).to(device) if algo.value_head else None
    params = list(model.parameters()) + (list(value_head.parameters()) if value_head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    kl_ctl = AdaptiveKLController(config.kl_coef, getattr(config, "target_kl", 1.0), getattr(config, "kl_horizon", 100))
    generator = torch.Generator().manual_seed(config.seed)
    reward_kl_coef = config.kl_coef if algo.kl_in_reward else 0.0  # GRPO: β goes into the loss (k3)
    needs_reference = algo.kl_in_reward or config.kl_coef > 0  # GRPO with β = 0 never reads log π_ref

    history = []
    bar = progress_bar(range(config.num_steps), desc=type(config).__name__.replace("Config", ""), disable=not progress)
    for step in bar:
        start = time.perf_counter()
        batch = rollout(model, ref_model if needs_reference else None, tokenizer, task_prompts(config, step), config, generator)
        batch = score(batch, reward_fn, config, reward_kl_coef, tokenizer)
        batch = compute_advantages(batch, config, model, value_head)
        metrics = {"step": step, **diagnostics(batch, reward_kl_coef, config.task)}
        _check_finite(step, metrics, config.explode_threshold)  # a NaN reward stops here, before any update
        warming = step < getattr(config, "value_warmup_steps", 0)
        metrics.update(update(model, value_head, optimizer, batch, config, generator, value_only=warming))
        metrics["kl_coef"] = reward_kl_coef if algo.kl_in_reward else config.kl_coef
        metrics["time/step_seconds"] = time.perf_counter() - start
        _check_finite(step, metrics, config.explode_threshold)
        if getattr(config, "adaptive_kl", False):
            reward_kl_coef = kl_ctl.update(metrics["objective/kl"])
        history.append(metrics)
        shown = "arith/correct" if config.task == "arith" else "gold/reward"
        bar.set_postfix(gold=f"{metrics[shown]:.2f}", kl=f"{metrics.get('objective/kl', 0.0):.2f}")
    model.eval()
    return {"history": history, "model": model, "tokenizer": tokenizer, "value_head": value_head,
            "ref_model": ref_model, "config": config}


@torch.no_grad()
def evaluate(model, tokenizer, ref_model=None, reward_fn=None, num_prompts: int = 200, max_new_tokens: int = 32,
             task: str = "review", seed: int = 12345) -> dict:
    """Score fresh samples from held-out prompts: gold reward, grammatical share, KL to the reference.

    Returns ``{"gold/reward", "gold/grammatical", "objective/scores", "objective/kl", "texts"}`` where
    ``objective/kl`` is the mean Σ_t (log π − log π_ref) per response (0 without ``ref_model``).
    """
    check_count("num_prompts", num_prompts)
    draw = grammar.review_prompts if task == "review" else grammar.story_prompts
    prompts = draw(num_prompts, seed=seed)
    model.eval()
    gen = policy.generate(model, tokenizer, prompts, max_new_tokens, generator=torch.Generator().manual_seed(seed))
    texts = gen.full_texts()
    mask = gen.response_mask.float()
    kl = 0.0
    if ref_model is not None:
        ref_logprobs, _, _ = forward_response(ref_model, gen, entropy=False)
        kl = (losses.kl_k1(gen.logprobs, ref_logprobs) * mask).sum(1).mean().item()
    return {
        "gold/reward": rewards.gold_reward(texts).mean().item(),
        "gold/grammatical": sum(map(grammar.is_grammatical, texts)) / len(texts),
        "objective/scores": (reward_fn or rewards.gold_reward)(texts).float().mean().item(),
        "objective/kl": kl,
        "texts": texts,
    }
