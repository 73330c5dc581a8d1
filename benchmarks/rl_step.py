"""Seconds per RL step: the course's loop (rlcourse.rl.loops) against TRL's GRPOTrainer, same work.

Same tiny model and tokenizer (the shipped rlcourse/assets/tiny-gpt), 64 generations per step
(16 prompts × G = 4), the same completion length, sampling at temperature 1 without top-k,
the same reward (the course's gold reward on prompt + completion), the same β = 0.02 k3 KL
to a frozen reference, one gradient step per batch, AdamW at the same learning rate.
Runs are interleaved (rlcourse, TRL, rlcourse, TRL, …) so that a burst of load on this
shared machine hits both; the first step of each run is a warm-up and is not counted.

Also: the PPO step of rlcourse.rl.loops (value head, GAE, 4 epochs × 2 minibatches), and one
rollout by ``model.generate`` (KV cache) against the course's sampler (rlcourse.model.sampling via
``policy.generate``), beside its arithmetic bound (one forward pass over the same tokens); the
phases of a GRPO step; and torch.profiler's table of where the rollouts' time goes.

Prints figures; asserts nothing. Usage:

    .venv/bin/python benchmarks/rl_step.py                 # a few minutes on 2 idle cores
    .venv/bin/python benchmarks/rl_step.py --threads 1     # steadier on a loaded machine

Wall-clock medians are what a user waits; CPU seconds (process time, all threads) are
steadier on a shared machine, where a burst of other work stretches wall time.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import torch

from rlcourse.model import loading, policy, runtime
from rlcourse.rl import loops
from rlcourse.world import grammar, rewards

NUM_PROMPTS, GROUP_SIZE = 16, 4  # 64 generations per step
LR, KL_COEF, CLIP_EPS = 5e-4, 0.02, 0.2


def rlcourse_grpo_steps(model, tokenizer, steps: int, max_new_tokens: int, seed: int) -> tuple[list[float], float]:
    """Wall seconds of each GRPO step through rlcourse.rl.loops.train (rollout, score, advantages,
    update), and the run's CPU seconds per step."""
    config = loops.GRPOConfig(num_steps=steps, num_prompts=NUM_PROMPTS, group_size=GROUP_SIZE,
                              max_new_tokens=max_new_tokens, lr=LR, kl_coef=KL_COEF, clip_eps=CLIP_EPS, seed=seed)
    cpu = time.process_time()
    out = loops.train(config, model=model, tokenizer=tokenizer, reward_fn=rewards.gold_reward, progress=False)
    return [m["time/step_seconds"] for m in out["history"]], (time.process_time() - cpu) / steps


def rlcourse_ppo_steps(model, tokenizer, steps: int, max_new_tokens: int, seed: int) -> tuple[list[float], float]:
    config = loops.PPOConfig(num_steps=steps, num_prompts=NUM_PROMPTS, group_size=GROUP_SIZE,
                             max_new_tokens=max_new_tokens, lr=LR, seed=seed)
    cpu = time.process_time()
    out = loops.train(config, model=model, tokenizer=tokenizer, reward_fn=rewards.gold_reward, progress=False)
    return [m["time/step_seconds"] for m in out["history"]], (time.process_time() - cpu) / steps


def trl_gold_reward(prompts, completions, **_kwargs) -> list[float]:
    """The course's gold reward on the same text rlcourse scores: prompt and completion joined."""
    texts = [f"{p} {c}".strip() for p, c in zip(prompts, completions)]
    return rewards.gold_reward(texts).tolist()


def make_trl_trainer(model, tokenizer, steps: int, max_new_tokens: int, seed: int, out_dir: str):
    """A GRPOTrainer doing the same work per step as rlcourse_grpo_steps, and the step timer."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.threads, self._start = [], set(), None

        def on_step_begin(self, args, state, control, **kwargs):
            self.threads.add(torch.get_num_threads())  # must match rlcourse's for a fair comparison
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self._start)

    prompts = grammar.review_prompts(NUM_PROMPTS * steps, seed=seed)
    config = GRPOConfig(
        output_dir=out_dir, max_steps=steps, per_device_train_batch_size=NUM_PROMPTS * GROUP_SIZE,
        num_generations=GROUP_SIZE, gradient_accumulation_steps=1, steps_per_generation=1,
        max_completion_length=max_new_tokens, temperature=1.0, top_k=0, top_p=1.0,
        learning_rate=LR, beta=KL_COEF, epsilon=CLIP_EPS, max_grad_norm=1.0, weight_decay=0.0,
        lr_scheduler_type="constant", warmup_steps=0, use_cpu=True, bf16=False, seed=seed, report_to="none",
        logging_steps=10_000, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=trl_gold_reward, args=config,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer,
                          callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # it prints the metrics dict at the end of train()
    return trainer, timer


def trl_grpo_steps(model, tokenizer, steps: int, max_new_tokens: int, seed: int, threads: int) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as out_dir:
        trainer, timer = make_trl_trainer(model, tokenizer, steps, max_new_tokens, seed, out_dir)
        torch.set_num_threads(threads)  # the same threads as rlcourse, whatever accelerate set
        cpu = time.process_time()
        trainer.train()
        cpu = (time.process_time() - cpu) / steps
    if timer.threads != {threads}:
        print(f"warning: TRL ran with torch threads {sorted(timer.threads)}, rlcourse with {threads}")
    return timer.seconds, cpu


def generation_seconds(model, tokenizer, max_new_tokens: int, seed: int) -> dict[str, float]:
    """One rollout of 64 prompts three ways, the same prompts and stopping rule (every row at EOS or T):
    ``model.generate`` with its KV cache, the course's sampler (``policy.generate``: tokenizing and
    decoding included) and, as the arithmetic bound, one forward pass over the finished sequences
    (the cached decode does that forward's matrix products, one position at a time)."""
    prompts = grammar.review_prompts(NUM_PROMPTS * GROUP_SIZE, seed=seed)
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    times = {}
    with torch.no_grad():
        torch.manual_seed(seed)
        start = time.perf_counter()
        model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                       use_cache=True, pad_token_id=tokenizer.pad_token_id)
        times["hf"] = time.perf_counter() - start
        start = time.perf_counter()
        gen = policy.generate(model, tokenizer, prompts, max_new_tokens, generator=torch.Generator().manual_seed(seed))
        times["ours"] = time.perf_counter() - start
        start = time.perf_counter()
        policy.forward(model, gen.input_ids, gen.attention_mask)
        times["bound"] = time.perf_counter() - start
    times["tokens"] = gen.response_ids.shape[1]
    return times


def grpo_step_breakdown(model, tokenizer, steps: int, max_new_tokens: int) -> dict[str, float]:
    """Median milliseconds of each phase of an rlcourse GRPO step, called as ``loops.train`` calls them:
    sampling (``policy.generate``), the reference's log-probs (one forward), the reward, the
    advantages, and the update (forward + backward + AdamW). The first step is a warm-up."""
    config = loops.GRPOConfig(num_steps=steps, num_prompts=NUM_PROMPTS, group_size=GROUP_SIZE,
                              max_new_tokens=max_new_tokens, lr=LR, kl_coef=KL_COEF, clip_eps=CLIP_EPS)
    ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    phases: dict[str, list[float]] = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        phases.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return out

    for step in range(steps):
        prompts = loops.task_prompts(config, step)
        model.eval()
        with torch.no_grad():
            gen = timed("sample (policy.generate)", lambda: policy.generate(
                model, tokenizer, prompts, max_new_tokens, config.temperature, 0, generator))
            ref = timed("reference log-probs", lambda: loops.forward_response(ref_model, gen, entropy=False)[0])
        mask = gen.response_mask.float()
        batch = loops.Batch(gen, gen.logprobs * mask, ref * mask, mask)
        batch = timed("reward", lambda: loops.score(batch, rewards.gold_reward, config, 0.0))
        batch = timed("advantages", lambda: loops.compute_advantages(batch, config, model, None))
        timed("update (forward, backward, AdamW)", lambda: loops.update(model, None, optimizer, batch, config, generator))
    return {name: statistics.median(ms[1:]) for name, ms in phases.items()}


def rollout_profile(model, tokenizer, max_new_tokens: int, rows: int = 10) -> str:
    """torch.profiler's table of the operations that take a rollout's time (5 rollouts of 64 prompts,
    by self CPU time): where the sampler's time goes beyond its arithmetic."""
    from torch.profiler import profile

    prompts = grammar.review_prompts(NUM_PROMPTS * GROUP_SIZE, seed=0)
    generate = lambda seed: policy.generate(model, tokenizer, prompts, max_new_tokens,  # noqa: E731
                                            generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        generate(0)  # warm-up
        with profile() as prof:
            for seed in range(5):
                generate(seed)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def median_after_warmup(runs: list[list[float]]) -> float:
    return statistics.median(s for run in runs for s in run[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (rlcourse then TRL each)")
    parser.add_argument("--steps", type=int, default=5, help="steps per run (the first is a warm-up)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="completion length T (both)")
    parser.add_argument("--threads", type=int, default=runtime.DEFAULT_THREADS)
    args = parser.parse_args()
    runtime.setup(seed=0, threads=args.threads)
    base, tokenizer = loading.load_policy()
    n_params = sum(p.numel() for p in base.parameters())
    print(f"model: rlcourse tiny Llama ({n_params:,} parameters), {NUM_PROMPTS} prompts x G={GROUP_SIZE} = "
          f"{NUM_PROMPTS * GROUP_SIZE} generations/step, up to {args.max_new_tokens} new tokens, "
          f"torch threads {args.threads}, torch {torch.__version__}")

    print(f"load average at start: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
    for r in range(args.rounds):
        wall, cpu = rlcourse_grpo_steps(copy.deepcopy(base), tokenizer, args.steps, args.max_new_tokens, seed=r)
        ours.append(wall)
        ours_cpu.append(cpu)
        wall, cpu = trl_grpo_steps(copy.deepcopy(base), tokenizer, args.steps, args.max_new_tokens, seed=r,
                                   threads=args.threads)
        theirs.append(wall)
        theirs_cpu.append(cpu)
        print(f"  round {r + 1}: rlcourse {statistics.median(ours[-1][1:]):.3f} s/step ({ours_cpu[-1]:.2f} CPU s), "
              f"TRL {statistics.median(theirs[-1][1:]):.3f} s/step ({theirs_cpu[-1]:.2f} CPU s)")
    import trl

    ours_s, theirs_s = median_after_warmup(ours), median_after_warmup(theirs)
    ours_c, theirs_c = statistics.median(ours_cpu), statistics.median(theirs_cpu)
    print(f"GRPO step, median of {args.rounds}x{args.steps - 1} steps: rlcourse.rl.loops {ours_s:.3f} s, "
          f"TRL {trl.__version__} GRPOTrainer {theirs_s:.3f} s -> rlcourse is {theirs_s / ours_s:.2f}x faster")
    print(f"GRPO step, CPU seconds (all threads, median over runs): rlcourse.rl.loops {ours_c:.2f}, "
          f"TRL {theirs_c:.2f} -> ratio {theirs_c / ours_c:.2f}")

    breakdown = grpo_step_breakdown(copy.deepcopy(base), tokenizer, args.steps + 3, args.max_new_tokens)
    print("where an rlcourse GRPO step goes (median ms): " + ", ".join(f"{k} {v:.0f}" for k, v in breakdown.items())
          + f"; total {sum(breakdown.values()):.0f}")

    ppo = [rlcourse_ppo_steps(copy.deepcopy(base), tokenizer, args.steps, args.max_new_tokens, seed=r)[0]
           for r in range(args.rounds)]
    print(f"PPO step (rlcourse.rl.loops, value head + GAE, 4 epochs x 2 minibatches): "
          f"median {median_after_warmup(ppo):.3f} s")

    base.eval()
    rollouts = [generation_seconds(base, tokenizer, args.max_new_tokens, seed=r) for r in range(2 * args.rounds + 1)]
    hf, ours, bound = (statistics.median(g[k] for g in rollouts) for k in ("hf", "ours", "bound"))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(f"rollout of {NUM_PROMPTS * GROUP_SIZE} prompts, up to {args.max_new_tokens} tokens (stopping at EOS; "
          f"{min(g['tokens'] for g in rollouts)}-{max(g['tokens'] for g in rollouts)} steps), medians of {len(rollouts)}: "
          f"model.generate (KV cache) {hf * 1e3:.0f} ms, rlcourse policy.generate {ours * 1e3:.0f} ms -> "
          f"{hf / ours:.1f}x; the arithmetic (one forward over the same tokens) {bound * 1e3:.0f} ms")
    print("where the rollouts' time goes (torch.profiler, 5 rollouts):")
    print(rollout_profile(base, tokenizer, args.max_new_tokens))

if __name__ == "__main__":
    main()
