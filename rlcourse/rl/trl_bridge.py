"""The road to TRL: run the course's setting (tiny model, gold reward) through TRL's GRPOTrainer.

TRL (Hugging Face's library for RL on language models) is what a course project uses once it
outgrows one machine: its trainers run on several GPUs through Accelerate, with vLLM for fast
sampling. Every piece of it has a counterpart in this course (see :data:`CONCEPTS`), so the
same experiment can be written either way; ``rlcourse trl-grpo`` runs it from the command line,
under ``accelerate launch`` on any number of GPUs (docs/scale.md). ``trl`` is an optional extra
(``pip install -e .[trl]``); :func:`trl_available` says whether it is installed, and nothing here
imports it before it is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path

import torch

from rlcourse.utils import check
from rlcourse.world import rewards

__all__ = ["CONCEPTS", "trl_available", "gold_reward_for_trl", "launched_processes", "per_process_batch",
           "weights_digest", "run_trl_grpo"]

# course concept -> (where it lives in rlcourse, the TRL trainer/option/metric that does the same)
CONCEPTS = [
    ("policy π_θ, reference π_ref", "loading.load_policy, a frozen copy", "model=…, ref model made by the trainer when beta > 0"),
    ("reward model r_φ, Bradley–Terry", "reward_model.train_reward_model", "RewardTrainer (loss −log σ(r_c − r_r))"),
    ("REINFORCE leave-one-out", "loops.RLOOConfig", "RLOOTrainer (num_generations = G; beta: KL in the reward)"),
    ("group-normalised advantages", "loops.GRPOConfig, advantages.group_advantages", "GRPOTrainer (scale_rewards='group')"),
    ("PPO: clip, value head, GAE", "loops.PPOConfig, losses.ppo_clip_loss, advantages.gae",
     "PPOTrainer (experimental in TRL 1.x): cliprange, vf_coef, gamma, lam"),
    ("KL to the reference", "losses.kl_k1 / kl_k3, kl_coef",
     "beta: RLOO subtracts β·Σ_t k1 from each reward, GRPO adds β·k3 to the loss; metric objective/kl or kl"),
    ("DPO on preference pairs", "dpo.train_dpo, losses.dpo_loss", "DPOTrainer (beta); rewards/chosen, rewards/margins, rewards/accuracies"),
    ("best-of-N", "dpo.best_of_n_curve", "sample num_generations and keep the best (no trainer needed)"),
    ("mean reward of a batch", "objective/scores, gold/reward", "reward, rewards/<function name>/mean"),
    ("entropy, clip fraction", "policy/entropy_avg, policy/clipfrac_avg", "entropy, clip_ratio/region_mean"),
]


def trl_available() -> bool:
    """True when the optional ``trl`` extra is installed (checked without importing it)."""
    return importlib.util.find_spec("trl") is not None


def gold_reward_for_trl(prompts: list[str], completions: list[str], **_kwargs) -> list[float]:
    """The course's gold reward in TRL's reward-function signature (prompt and completion joined)."""
    return rewards.gold_reward([f"{p} {c}".strip() for p, c in zip(prompts, completions)]).tolist()


def launched_processes() -> int:
    """How many processes run this training together: N under ``accelerate launch --num_processes N``, else 1.

    ``accelerate launch`` (like ``torchrun``) sets ``WORLD_SIZE`` in every process it starts; TRL then
    reads the same number from Accelerate. Nothing is initialised by asking.
    """
    return int(os.environ.get("WORLD_SIZE", "1"))


def per_process_batch(prompts_per_step: int, num_generations: int, num_processes: int = 1) -> int:
    """Completions each process samples and trains on per step: TRL's ``per_device_train_batch_size``.

    The bridge fixes the *global* batch, ``prompts_per_step × num_generations`` completions per
    optimizer step, so that one process and N processes (one per GPU) run the same experiment;
    each process takes ``global batch / N``. TRL 1.16's own rule (``GRPOConfig.__post_init__``):
    its generation batch ``per_device_train_batch_size × num_processes × steps_per_generation``
    must be divisible by ``num_generations``. Here that batch is the global batch
    (``steps_per_generation`` = 1), a multiple of ``num_generations`` by construction; what is left
    to check is that it splits evenly over the processes. A prompt's group of ``num_generations``
    may span two processes: TRL gathers every reward before it normalises them per group.

    Example:
        >>> per_process_batch(prompts_per_step=8, num_generations=4, num_processes=2)  # 32 completions, 16 each
        16

    Raises:
        ValueError: when ``num_generations < 2`` or the global batch does not split evenly.
    """
    check(num_generations >= 2, f"num_generations must be at least 2 (GRPO compares the samples of a prompt "
                                f"with each other), got {num_generations}.")
    check(prompts_per_step >= 1 and num_processes >= 1, f"prompts_per_step and num_processes must be at least 1, "
                                                        f"got {prompts_per_step} and {num_processes}.")
    global_batch = prompts_per_step * num_generations
    check(global_batch % num_processes == 0,
          f"The global batch of {prompts_per_step} prompts × {num_generations} generations = {global_batch} "
          f"completions does not split evenly over {num_processes} processes; choose prompts_per_step so that "
          f"prompts_per_step × num_generations is a multiple of the number of processes.")
    return global_batch // num_processes


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over ``model.state_dict()``, names and raw bytes in order: equal digests, bitwise equal weights.

    Used to check that data-parallel processes (DDP) end with the same weights, and that training moved them.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def run_trl_grpo(model, tokenizer, prompts: list[str], max_steps: int = 4, num_generations: int = 4,
                 prompts_per_step: int = 8, max_completion_length: int = 24, learning_rate: float = 1e-3,
                 beta: float = 0.0, seed: int = 0, output_dir: str | Path | None = None, use_cpu: bool = True,
                 bf16: bool | None = None) -> list[dict]:
    """A few ``trl.GRPOTrainer`` steps on ``model`` (trained in place) with the gold reward, offline.

    TRL's own progress printing (``PrinterCallback``, which prints a varying step time) is
    removed. Run in one process, or in N under ``accelerate launch --num_processes N`` (DDP:
    Accelerate keeps the N copies of the model equal by averaging their gradients); the global
    batch is the same either way (:func:`per_process_batch`).

    Args:
        prompts: the training prompts (a ``datasets.Dataset`` column ``"prompt"``).
        max_steps: optimizer steps; each samples ``prompts_per_step × num_generations`` completions
            in all, split evenly over the processes.
        beta: TRL's KL coefficient (0: no reference model, as TRL's default).
        output_dir: ``None``: nothing is written outside a temporary folder. A folder: the trainer
            saves the final model and tokenizer there (the main process only, ``Trainer.save_model``),
            and every process writes ``process-<index>.json`` with the digests of its weights before
            and after training (:func:`weights_digest`).
        use_cpu: TRL's ``use_cpu``; ``False`` trains on the GPU when there is one.
        bf16: TRL's ``bf16`` (bfloat16 autocast); ``None`` keeps TRL's default, which is on.

    Returns:
        TRL's ``trainer.state.log_history``, one dict per step (``"reward"``, ``"kl"``,
        ``"entropy"``, ``"loss"``, … in TRL's names).

    Raises:
        ImportError: with the install command, when ``trl`` is absent.
        ValueError: from :func:`per_process_batch`, in one sentence.
    """
    if not trl_available():
        raise ImportError("run_trl_grpo needs the optional trl extra; install it with `pip install -e .[trl]`.")
    per_device = per_process_batch(prompts_per_step, num_generations, launched_processes())
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    with contextlib.ExitStack() as stack:
        out_dir = str(output_dir) if output_dir is not None else stack.enter_context(tempfile.TemporaryDirectory())
        precision = {} if bf16 is None else {"bf16": bf16}  # absent: TRL's default
        config = GRPOConfig(output_dir=out_dir, per_device_train_batch_size=per_device,
                            num_generations=num_generations, max_completion_length=max_completion_length,
                            learning_rate=learning_rate, beta=beta, max_steps=max_steps, logging_steps=1,
                            use_cpu=use_cpu, report_to="none", disable_tqdm=True, save_strategy="no", seed=seed,
                            **precision)
        trainer = GRPOTrainer(model=model, reward_funcs=gold_reward_for_trl, args=config,
                              train_dataset=Dataset.from_dict({"prompt": list(prompts)}), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        before = weights_digest(model) if output_dir is not None else None  # hashing every weight: only when recorded
        trainer.train()
        if output_dir is not None:
            trainer.save_model(out_dir)  # writes on the main process only
            _write_process_record(trainer, Path(out_dir), before, weights_digest(model))
    model.eval()
    return [entry for entry in trainer.state.log_history if "reward" in entry]


def _write_process_record(trainer, out_dir: Path, before: str, after: str) -> None:
    """``process-<index>.json``: what this process trained, and the digests of its weights before and after."""
    accelerator = trainer.accelerator
    record = {"process_index": accelerator.process_index, "num_processes": accelerator.num_processes,
              "distributed_type": accelerator.distributed_type.value, "backend": accelerator.state.backend,
              "global_step": trainer.state.global_step,
              "per_device_train_batch_size": trainer.args.per_device_train_batch_size,
              "weights_sha256_before": before, "weights_sha256_after": after}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"process-{accelerator.process_index}.json").write_text(json.dumps(record, indent=1) + "\n")
