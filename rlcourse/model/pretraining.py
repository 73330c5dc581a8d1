"""Pretraining that reproduces the course's shipped models: tiny-gpt and tiny-math.

``pretrain()`` (also ``rlcourse pretrain``) reproduces ``assets/tiny-gpt``: next-token
cross-entropy on a fresh batch of the grammar's texts (:mod:`rlcourse.world.grammar`) every step.
``benchmarks/pretrain.py`` re-runs the whole recipe (minutes) and compares its validation loss,
while ``pretrain(stop_after=LOSS_CURVE_STEPS)`` re-runs only the first steps, whose loss curve
``training_stats.json`` records (the tests compare it, in seconds).

:func:`pretrain_math` (``rlcourse pretrain-math``) reproduces ``assets/tiny-math`` with the same
training loop, :func:`fit_causal_lm`, on worked solutions of :mod:`rlcourse.world.arith`, and
reports its held-out pass@k on the model card. Each writes a model card that states corpus, size,
steps, final loss and the command that reproduces it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup

from rlcourse.model import math_eval
from rlcourse.model.loading import (DEFAULT_MODEL_PATH, MATH_MODEL_PATH, build_config, build_math_tokenizer,
                                    build_tokenizer, count_parameters, generation_config)
from rlcourse.utils import check, progress_bar
from rlcourse.world import arith, grammar

MATH_EVAL_KS = (1, 4, 16)  # the pass@k the model card reports

# ----------------------------------------------------------------------------- pretraining


def corpus_batch(rng: random.Random, batch_size: int, story_fraction: float) -> list[str]:
    """A batch of texts from the grammar: all reviews, or (with probability ``story_fraction``) all stories.

    Whole batches of one kind keep padding short: a story is ~4× a review's length, and one
    story in a batch of reviews would make every row that long.
    """
    sample = grammar.sample_story if rng.random() < story_fraction else grammar.sample_review
    return [sample(rng) for _ in range(batch_size)]


def encode_for_lm(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    """``<bos> text <eos>``, right-padded, with labels -100 on padding (ignored by the loss)."""
    rows = [tokenizer(t)["input_ids"] + [tokenizer.eos_token_id] for t in texts]
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), tokenizer.pad_token_id)  # (B, L)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)  # (B, L)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
        attention_mask[i, : len(r)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, -100)  # (B, L)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@torch.no_grad()
def validation_loss(model, tokenizer, texts: list[str], batch_size: int = 128) -> float:
    """Mean next-token cross-entropy (nats per token) over ``texts``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        batch = encode_for_lm(tokenizer, texts[start : start + batch_size])
        n_tokens = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(**batch).loss) * n_tokens
        count += n_tokens
    return total / count


def validation_texts(n: int = 512, seed: int = 10_000, story_fraction: float = 0.2) -> list[str]:
    """The fixed held-out corpus sample that ``pretrain`` reports its loss on (same mix as training)."""
    rng = random.Random(seed)
    n_stories = round(n * story_fraction)
    return [grammar.sample_story(rng) for _ in range(n_stories)] + [grammar.sample_review(rng) for _ in range(n - n_stories)]


LOSS_CURVE_WINDOW = 20  # steps averaged per point of the recorded loss curve (one batch's loss is noisy)
# The curve covers the first 100 steps (most of the warm-up): ~12 s on 2 idle cores, and training
# has not yet amplified CPU-dependent rounding much (~1e-6 relative at step 100, ~3e-5 at step 200).
LOSS_CURVE_STEPS = 100


def check_run_length(num_steps: int, stop_after: int | None) -> int:
    """The number of steps a run trains: ``num_steps``, or its first ``stop_after`` (checked)."""
    steps_trained = num_steps if stop_after is None else stop_after
    check(isinstance(num_steps, int) and num_steps >= 1, f"num_steps must be an int >= 1, got {num_steps!r}.")
    check(isinstance(steps_trained, int) and 1 <= steps_trained <= num_steps,
          f"stop_after must be None or an int from 1 to num_steps={num_steps}, got {stop_after!r}.")
    return steps_trained


def lm_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Hugging Face's own next-token loss of ``model`` on a batch from :func:`encode_for_lm`."""
    return model(**batch).loss


def fit_causal_lm(model, next_batch, num_steps: int, steps_trained: int, lr: float, progress: bool = True,
                  desc: str = "pretraining", loss_fn=lm_loss) -> tuple[list[float], float]:
    """The one causal-LM training loop: pretraining of the shipped models, and supervised fine-tuning.

    Each step draws ``next_batch()`` (a dict of tensors, e.g. :func:`encode_for_lm` of fresh
    texts), takes ``loss_fn(model, batch)`` (default :func:`lm_loss`, next-token cross-entropy on
    every labelled token; SFT passes a loss on response tokens only), and one AdamW step (weight
    decay 0.01, betas (0.9, 0.98), gradients clipped to norm 1) on a schedule of warm-up over the
    first 5% of ``num_steps`` then cosine decay to 0 at ``num_steps``; it stops after
    ``steps_trained`` steps (a prefix of the same run).

    Returns:
        ``(history, seconds)``: the loss of every step, and the wall time of the loop.

    Raises:
        ValueError: when the loss stops being finite (the step is named).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    schedule = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=num_steps // 20, num_training_steps=num_steps)
    history, start = [], time.perf_counter()
    model.train()
    bar = progress_bar(range(steps_trained), desc=desc, disable=not progress)
    for step in bar:
        loss = loss_fn(model, next_batch())
        if not torch.isfinite(loss):
            model.eval()
            raise ValueError(f"the {desc} loss became {loss.item()} at step {step}; lower lr (now {lr}).")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        history.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return history, time.perf_counter() - start


def pretrain(
    out_dir: str | Path | None = DEFAULT_MODEL_PATH,
    num_steps: int = 2500,
    batch_size: int = 64,
    lr: float = 3e-3,
    story_fraction: float = 0.2,
    seed: int = 0,
    threads: int = 2,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Pretrain the tiny model on fresh samples of the grammar, and save it in HF format.

    Every step draws a new batch from the grammar (an endless corpus: no epochs, no
    overfitting), minimises next-token cross-entropy with AdamW, warm-up (the first 5% of
    ``num_steps``) then cosine decay to 0 at ``num_steps`` (:func:`fit_causal_lm`).

    Args:
        out_dir: where to save the model (``None``: keep it in memory only).
        num_steps: the length of the run, which sets the learning-rate schedule.
        batch_size, lr, story_fraction, seed: the recipe (``lr`` is the peak rate).
        threads: torch CPU threads.
        progress: show a ``tqdm`` bar.
        stop_after: train only the first ``stop_after`` steps of the ``num_steps`` run, on the
            same schedule and batches, so the losses are the full run's first ones (a cheap
            check of the recipe). A stopped run is a probe, not the model: it is written
            only to an ``out_dir`` other than the shipped folder, never over it.

    Returns:
        ``{"model", "tokenizer", "history": [loss per step], "val_loss", "seconds", ...}``,
        the recipe's arguments and ``"steps_trained"``; when ``out_dir`` is not ``None`` (and,
        for a stopped run, not the shipped folder) the model, tokenizer, generation config
        and a model card are written there.
    """
    steps_trained = check_run_length(num_steps, stop_after)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = build_tokenizer()
    model = LlamaForCausalLM(build_config(len(tokenizer), tokenizer))
    model.generation_config = generation_config(tokenizer)
    history, seconds = fit_causal_lm(model, lambda: encode_for_lm(tokenizer, corpus_batch(rng, batch_size, story_fraction)),
                                     num_steps=num_steps, steps_trained=steps_trained, lr=lr, progress=progress)
    val_loss = validation_loss(model, tokenizer, validation_texts(story_fraction=story_fraction))
    model.eval()
    result = {
        "model": model,
        "tokenizer": tokenizer,
        "history": history,
        "val_loss": val_loss,
        "seconds": seconds,
        "num_steps": num_steps,
        "steps_trained": steps_trained,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "story_fraction": story_fraction,
    }
    if out_dir is not None and not is_shipped_probe(out_dir, DEFAULT_MODEL_PATH, steps_trained, num_steps):
        save_pretrained(result, Path(out_dir))
    return result


def is_shipped_probe(out_dir: str | Path, shipped: Path, steps_trained: int, num_steps: int) -> bool:
    """True for a stopped run (a probe of the recipe) aimed at the shipped folder: it must not be written."""
    return steps_trained < num_steps and Path(out_dir).resolve() == shipped.resolve()


def loss_curve(history: list[float], window: int = LOSS_CURVE_WINDOW) -> list[float]:
    """Mean training loss over each full window of ``w = window`` steps of ``history`` (h_0, h_1, ...):

        [mean(h_0 … h_{w−1}), mean(h_w … h_{2w−1}), ...]

    A leftover partial window at the end is dropped, so a curve from a longer run starts
    with the same points.

    Example:
        >>> loss_curve([4.0, 2.0, 3.0, 1.0, 9.0], window=2)
        [3.0, 2.0]
    """
    check(isinstance(window, int) and window >= 1, f"window must be an int >= 1, got {window!r}.")
    return [sum(history[i : i + window]) / window for i in range(0, len(history) - window + 1, window)]


def save_pretrained(result: dict, out_dir: Path) -> None:
    """Write weights (safetensors), config, tokenizer, generation config and the model card.

    ``training_stats.json`` holds the recipe, the validation loss, the parameter counts and
    the loss curve of the first :data:`LOSS_CURVE_STEPS` steps (:func:`stats_of`).
    """
    stats = stats_of(result)
    write_model(result, out_dir, stats, model_card(result, stats))


def write_model(result: dict, out_dir: Path, stats: dict, card: str) -> None:
    """Write ``result``'s model and tokenizer (HF format), ``training_stats.json`` and the model card."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result["model"].save_pretrained(out_dir)
    result["tokenizer"].save_pretrained(out_dir)
    (out_dir / "training_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    (out_dir / "README.md").write_text(card)


def stats_of(result: dict) -> dict:
    """The ``training_stats.json`` of a :func:`pretrain` result.

    Keys: the recipe (``num_steps``, ``batch_size``, ``lr``, ``seed``, ``story_fraction``),
    ``val_loss``, ``parameters``, ``vocab_size``; ``steps_trained`` for a stopped run; and,
    when the run reached :data:`LOSS_CURVE_STEPS` steps, ``loss_curve``:
    ``{"window": 20, "steps": 100, "mean_loss": [one mean per window]}`` (:func:`loss_curve`).
    """
    stats = {k: result[k] for k in ("val_loss", "num_steps", "batch_size", "lr", "seed", "story_fraction")}
    if result["steps_trained"] < result["num_steps"]:
        stats["steps_trained"] = result["steps_trained"]
    stats["parameters"] = count_parameters(result["model"])
    stats["vocab_size"] = len(result["tokenizer"])
    if len(result["history"]) >= LOSS_CURVE_STEPS:
        stats["loss_curve"] = {"window": LOSS_CURVE_WINDOW, "steps": LOSS_CURVE_STEPS,
                               "mean_loss": loss_curve(result["history"][:LOSS_CURVE_STEPS])}
    return stats


def _training_steps(stats: dict) -> str:
    """``"2500 steps"``, or for a stopped run ``"the first 100 steps of a 2500-step run"``."""
    if "steps_trained" in stats:
        return f"the first {stats['steps_trained']} steps of a {stats['num_steps']}-step run"
    return f"{stats['num_steps']} steps"


def _loss_curve_line(stats: dict, command: str = "pretrain") -> str:
    """The model card's bullet on the recorded loss curve (empty when the run was too short to have one)."""
    if "loss_curve" not in stats:
        return ""
    curve = stats["loss_curve"]
    points = ", ".join(f"{x:.3f}" for x in curve["mean_loss"])
    return f"""- **Loss curve**: the mean training loss over each window of {curve['window']} steps of the
  first {curve['steps']} steps is {points} nats/token (`loss_curve` in `training_stats.json`);
  the tests re-run those steps (`{command}(stop_after={curve['steps']})`, same schedule) and compare.
"""


def model_card(result: dict, stats: dict) -> str:
    """The model card (README.md) written next to the weights, from ``training_stats.json``'s ``stats``."""
    p = stats["parameters"]
    return f"""---
library_name: transformers
tags: [rlcourse, tiny, llama, synthetic]
---
# tiny-gpt: the rlcourse policy

A {p['total']:,}-parameter Llama-style causal LM ({p['weights']:,} weights, {p['biases']:,}
biases; 2 blocks, width 128, 4 heads, rotary positions, attention and MLP biases on, tied
embeddings) with a {stats['vocab_size']}-token word-level tokenizer.

- **Corpus**: synthetic movie reviews ({1 - stats['story_fraction']:.0%} of batches) and short stories
  ({stats['story_fraction']:.0%}) sampled from the probabilistic grammar in `rlcourse/grammar.py`
  ({len(grammar.vocabulary())} words and punctuation marks) — a fresh batch every step, no fixed dataset.
- **Training**: {_training_steps(stats)} of AdamW, batch {stats['batch_size']}, peak lr
  {stats['lr']}, warm-up then cosine decay, seed {stats['seed']}, 2 CPU threads.
- **Final validation loss**: {stats['val_loss']:.4f} nats/token on 512 held-out grammar samples
  (perplexity {math.exp(stats['val_loss']):.2f}).
{_loss_curve_line(stats)}- **Reproduce**: `rlcourse pretrain --out rlcourse/assets/tiny-gpt` (a few minutes on 2 cores).
- **Use**: `rlcourse.load_policy()` or `AutoModelForCausalLM.from_pretrained(path)`.

It exists to be the policy π_θ of an offline course on RL for LLMs; it knows nothing but
its grammar.
"""



# ----------------------------------------------------------------------------- the math model (verifiable rewards)


def math_corpus_batch(rng: random.Random, batch_size: int, noise: arith.SolverNoise) -> list[str]:
    """``batch_size`` training problems, each followed by a worked solution with the solver's slips.

    One operand count (uniform in 2-6) per batch, as :func:`corpus_batch` keeps one kind per
    batch: a 6-operand solution is ~4× a 2-operand one, and padding would make every row that long.
    """
    num_operands, texts = rng.randint(arith.MIN_OPERANDS, arith.MAX_OPERANDS), []
    for _ in range(batch_size):
        problem = arith.sample_problem(rng, num_operands, split="train")
        texts.append(f"{problem.text} {arith.sample_worked_solution(problem, rng, noise)}")
    return texts


def math_validation_texts(n: int = 512, seed: int = 10_000, noise: arith.SolverNoise = arith.SolverNoise()) -> list[str]:
    """Held-out problems with noisy worked solutions: the texts ``pretrain_math`` reports its loss on."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        problem = arith.sample_problem(rng, split="test")
        texts.append(f"{problem.text} {arith.sample_worked_solution(problem, rng, noise)}")
    return texts


def pretrain_math(
    out_dir: str | Path | None = MATH_MODEL_PATH,
    num_steps: int = 4000,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    threads: int = 1,
    noise: arith.SolverNoise = arith.SolverNoise(),
    eval_samples: int = 32,
    eval_per_count: int = 50,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Pretrain the tiny-math model on worked solutions with mistakes, measure its pass@k, save it.

    The architecture is tiny-gpt's (:func:`build_config`) over the arithmetic vocabulary; each
    step draws a fresh batch of training-split problems with solutions from the careless solver
    (``noise``, :func:`arith.sample_worked_solution`), so the model learns to slip as often as it
    does: its pass@1 starts well below 1 and RL has something to learn. The loop is
    :func:`fit_causal_lm`, the one that trains tiny-gpt.

    Args:
        out_dir, num_steps, batch_size, lr, seed, progress, stop_after: as in :func:`pretrain`.
        threads: torch CPU threads while it runs (the caller's count is restored after).
        noise: how the corpus's solver slips.
        eval_samples: responses sampled per held-out problem (temperature 1, seed ``seed``) for pass@k;
            0 skips the evaluation (a stopped run never evaluates).
        eval_per_count: held-out problems per operand count (:func:`arith.held_out_problems`).

    Returns:
        like :func:`pretrain` (``noise`` instead of ``story_fraction``), plus ``"evaluation"``
        (:func:`math_eval.evaluate_policy`'s report, or ``None``).
    """
    steps_trained = check_run_length(num_steps, stop_after)
    caller_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = _pretrain_math(num_steps, steps_trained, batch_size, lr, seed, threads, noise, eval_samples,
                                eval_per_count, progress)
    finally:
        torch.set_num_threads(caller_threads)
    if out_dir is not None and not is_shipped_probe(out_dir, MATH_MODEL_PATH, steps_trained, num_steps):
        stats = math_stats_of(result)
        write_model(result, Path(out_dir), stats, math_model_card(stats))
    return result


def _pretrain_math(num_steps, steps_trained, batch_size, lr, seed, threads, noise, eval_samples, eval_per_count,
                   progress) -> dict:
    """:func:`pretrain_math`'s run, on the thread count already set: train, validate, evaluate."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = build_math_tokenizer()
    model = LlamaForCausalLM(build_config(len(tokenizer), tokenizer))
    model.generation_config = generation_config(tokenizer, max_new_tokens=arith.MAX_RESPONSE_TOKENS)
    history, seconds = fit_causal_lm(model, lambda: encode_for_lm(tokenizer, math_corpus_batch(rng, batch_size, noise)),
                                     num_steps=num_steps, steps_trained=steps_trained, lr=lr, progress=progress,
                                     desc="pretraining tiny-math")
    val_loss = validation_loss(model, tokenizer, math_validation_texts(noise=noise))
    evaluation = None
    if eval_samples > 0 and steps_trained == num_steps:
        problems = arith.held_out_problems(eval_per_count, seed=seed)
        ks = tuple(k for k in MATH_EVAL_KS if k <= eval_samples)  # pass@k needs at least k samples
        evaluation = math_eval.evaluate_policy(model, tokenizer, problems, num_samples=eval_samples, ks=ks,
                                           seed=seed)
    result = {"model": model, "tokenizer": tokenizer, "history": history, "val_loss": val_loss, "seconds": seconds,
              "num_steps": num_steps, "steps_trained": steps_trained, "batch_size": batch_size, "lr": lr, "seed": seed,
              "threads": threads, "noise": noise, "evaluation": evaluation}
    return result


def math_stats_of(result: dict) -> dict:
    """The tiny-math ``training_stats.json``: recipe, solver noise, losses, parameters, loss curve, pass@k."""
    stats = {k: result[k] for k in ("val_loss", "num_steps", "batch_size", "lr", "seed", "threads", "seconds")}
    stats["noise"] = dataclasses.asdict(result["noise"])
    if result["steps_trained"] < result["num_steps"]:
        stats["steps_trained"] = result["steps_trained"]
    stats["parameters"] = count_parameters(result["model"])
    stats["vocab_size"] = len(result["tokenizer"])
    if len(result["history"]) >= LOSS_CURVE_STEPS:
        stats["loss_curve"] = {"window": LOSS_CURVE_WINDOW, "steps": LOSS_CURVE_STEPS,
                               "mean_loss": loss_curve(result["history"][:LOSS_CURVE_STEPS])}
    stats["evaluation"] = result["evaluation"]
    return stats


def _pass_at_k_lines(evaluation: dict | None) -> str:
    """The model card's pass@k table (empty when the run was not evaluated)."""
    if evaluation is None:
        return "- **pass@k**: not measured (a stopped or unevaluated run).\n"
    ks = list(evaluation["pass@k"])
    head = "| operands | problems | " + " | ".join(f"pass@{k}" for k in ks) + " |\n|---|---|" + "---|" * len(ks) + "\n"
    rows = "".join(f"| {m} | {v['problems']} | " + " | ".join(f"{v['pass@k'][k]:.3f}" for k in ks) + " |\n"
                   for m, v in evaluation["by_operands"].items())
    overall = "| mean over 2-6 | " + str(evaluation["num_problems"]) + " | " + \
        " | ".join(f"{evaluation['pass@k'][k]:.3f}" for k in ks) + " |\n"
    return f"""- **pass@k on held-out problems** (`arith.held_out_problems`, problems never seen in training):
  {evaluation['num_samples']} responses sampled per problem at temperature {evaluation['temperature']:g}
  (`math_eval.evaluate_policy`, seed {evaluation['seed']}, `policy.generate`), pass@k by the unbiased estimator
  of Chen et al. 2021 (`arith.pass_at_k`), averaged over the problems of each operand count, then over the counts:

{head}{rows}{overall}
  Responses: {evaluation['well_formed']:.1%} well formed (every step parses, ends with an answer);
  {evaluation['valid_steps']:.1%} of steps valid; {evaluation['mean_words']:.1f} tokens and
  {evaluation['check_steps']:.2f} check steps per response on average.
"""


def math_model_card(stats: dict) -> str:
    """The tiny-math model card (README.md), from its ``training_stats.json``."""
    p, noise = stats["parameters"], stats["noise"]
    return f"""---
library_name: transformers
tags: [rlcourse, tiny, llama, synthetic, arithmetic, verifiable-rewards]
---
# tiny-math: the rlcourse policy for verifiable rewards

A {p['total']:,}-parameter Llama-style causal LM ({p['weights']:,} weights, {p['biases']:,}
biases; tiny-gpt's architecture: 2 blocks, width 128, 4 heads, rotary positions, attention and
MLP biases on, tied embeddings) with a {stats['vocab_size']}-token word-level tokenizer
(`<pad> <bos> <eos> <unk>` = ids 0-3, then `+ - = ; answer check` and the integers
{arith.NUMBER_RANGE[0]} to {arith.NUMBER_RANGE[1]}, one token each).

It solves problems such as `4 + 3 - 2 =` (2-6 single-digit operands, `+` and `-`) in steps,
`4 + 3 = 7 ; 7 - 2 = 5 ; answer 5`, sometimes adding a redundant check step
(`check 5 + 2 = 7` after `7 - 2 = 5`), and it makes mistakes: it was trained to imitate a careless solver.

- **Corpus**: training-split problems of `rlcourse/world/arith.py` (operand count uniform in 2-6),
  each with a worked solution by a solver that slips (`arith.SolverNoise`): a step is wrong
  with probability {noise['step_error']} plus {noise['carry_error']} when it carries or borrows (off by 1, off by 2 in
  {noise['off_by_two']:.0%} of slips, the other operation in {noise['wrong_op']:.0%}), a slip carries its value on to
  the answer, and a check step follows a step with probability {noise['check_rate']}. A fresh batch every step.
- **Training**: {_training_steps(stats)} of AdamW, batch {stats['batch_size']}, peak lr {stats['lr']},
  warm-up then cosine decay (`pretraining.fit_causal_lm`, tiny-gpt's loop), seed {stats['seed']},
  {stats['threads']} CPU thread{'s' if stats['threads'] > 1 else ''}, {stats['seconds']:.0f} s of training on the machine that made it.
- **Final validation loss**: {stats['val_loss']:.4f} nats/token on 512 held-out problems with noisy solutions.
{_loss_curve_line(stats, 'pretrain_math')}{_pass_at_k_lines(stats['evaluation'])}- **Reproduce**: `rlcourse pretrain-math --out rlcourse/assets/tiny-math` (minutes on one core).
- **Use**: `rlcourse.model.loading.load_math_policy()`, `rlcourse.load_policy("<this folder>")` or
  `AutoModelForCausalLM.from_pretrained(path)`; check its answers with `rlcourse.world.arith`.
"""
