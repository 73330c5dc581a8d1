"""The road to TRL: run the course's setting (tiny model, gold reward) through TRL's GRPOTrainer.

TRL (Hugging Face's library for RL on language models) is what a course project uses once it
outgrows one machine: its trainers run on several GPUs through Accelerate, with vLLM for fast
sampling. Every piece of it has a counterpart in this course (see :data:`CONCEPTS`), so the
same experiment can be written either way. ``trl`` is an optional extra
(``pip install -e .[trl]``); :func:`trl_available` says whether it is installed, and nothing here
imports it before it is needed.
"""

from __future__ import annotations

import importlib.util
import tempfile

from rlcourse.world import rewards

__all__ = ["CONCEPTS", "trl_available", "gold_reward_for_trl", "run_trl_grpo"]

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


def run_trl_grpo(model, tokenizer, prompts: list[str], max_steps: int = 4, num_generations: int = 4,
                 prompts_per_step: int = 8, max_completion_length: int = 24, learning_rate: float = 1e-3,
                 beta: float = 0.0, seed: int = 0) -> list[dict]:
    """A few ``trl.GRPOTrainer`` steps on ``model`` (trained in place) with the gold reward, on the CPU, offline.

    TRL's own progress printing (``PrinterCallback``, which prints a varying step time) is
    removed; nothing is downloaded and nothing is written outside a temporary folder.

    Args:
        prompts: the training prompts (a ``datasets.Dataset`` column ``"prompt"``).
        max_steps: optimizer steps; each samples ``prompts_per_step × num_generations`` completions.
        beta: TRL's KL coefficient (0: no reference model, as TRL's default).

    Returns:
        TRL's ``trainer.state.log_history``, one dict per step (``"reward"``, ``"kl"``,
        ``"entropy"``, ``"loss"``, … in TRL's names).

    Raises:
        ImportError: with the install command, when ``trl`` is absent.
    """
    if not trl_available():
        raise ImportError("run_trl_grpo needs the optional trl extra; install it with `pip install -e .[trl]`.")
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    with tempfile.TemporaryDirectory() as out_dir:
        config = GRPOConfig(output_dir=out_dir, per_device_train_batch_size=prompts_per_step * num_generations,
                            num_generations=num_generations, max_completion_length=max_completion_length,
                            learning_rate=learning_rate, beta=beta, max_steps=max_steps, logging_steps=1,
                            use_cpu=True, report_to="none", disable_tqdm=True, save_strategy="no", seed=seed)
        trainer = GRPOTrainer(model=model, reward_funcs=gold_reward_for_trl, args=config,
                              train_dataset=Dataset.from_dict({"prompt": list(prompts)}), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    model.eval()
    return [entry for entry in trainer.state.log_history if "reward" in entry]
