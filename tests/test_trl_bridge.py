"""rlcourse.rl.trl_bridge: the gold reward in TRL's signature, and a real GRPOTrainer run on the tiny model."""

import copy
import math

import pytest

from rlcourse.rl import trl_bridge
from rlcourse.world import grammar


def test_gold_reward_for_trl_joins_prompt_and_completion():
    # hand-worked in rewards.gold_reward's docstring: "the film was great ." scores tanh(1/2) = 0.4621
    scores = trl_bridge.gold_reward_for_trl(["the film was", "the film was"], ["great .", "awful ."])
    assert [round(s, 4) for s in scores] == [0.4621, -0.4621]


def test_concept_table_names_real_course_objects():
    import importlib

    homes = {"loading": "model.loading", "rewards": "world.rewards", "reward_model": "reward.reward_model",
             "loops": "rl.loops", "losses": "rl.losses", "advantages": "rl.advantages", "dpo": "rl.dpo"}
    named = 0
    for _concept, ours, _theirs in trl_bridge.CONCEPTS:
        for ref in ours.replace(",", " ").split():
            if "." in ref and "/" not in ref:
                module, name = ref.split(".", 1)
                assert module in homes, f"{ref}: name a module of the package"
                assert hasattr(importlib.import_module(f"rlcourse.{homes[module]}"), name.split(" ")[0]), ref
                named += 1
    assert named >= 10


def test_concept_table_puts_the_kl_where_each_trainer_does():
    """RLOO (the course's and TRL's) subtracts β·Σ k1 from the reward; GRPO adds β·k3 to the loss."""
    import inspect

    from rlcourse.rl import loops

    (kl_row,) = [theirs for concept, _ours, theirs in trl_bridge.CONCEPTS if concept.startswith("KL")]
    assert "RLOO subtracts β·Σ_t k1 from each reward" in kl_row and "GRPO adds β·k3 to the loss" in kl_row
    assert loops.ALGORITHMS[loops.RLOOConfig].kl_in_reward and not loops.ALGORITHMS[loops.GRPOConfig].kl_in_reward
    pytest.importorskip("trl", reason="the optional [trl] extra is not installed (make setup installs it)")
    from trl.trainer import grpo_trainer, rloo_trainer

    assert "rewards = rewards - self.beta * kl" in inspect.getsource(rloo_trainer)
    assert "self.beta * per_token_kl" in inspect.getsource(grpo_trainer)


@pytest.mark.slow
def test_run_trl_grpo_trains_the_tiny_model_with_the_gold_reward(tiny):
    pytest.importorskip("trl", reason="the optional [trl] extra is not installed (make setup installs it)")
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    before = [p.detach().clone() for p in model.parameters()]
    log = trl_bridge.run_trl_grpo(model, tokenizer, grammar.review_prompts(16, seed=0), max_steps=2,
                                  prompts_per_step=2, num_generations=4, max_completion_length=12)
    assert len(log) == 2
    for entry in log:
        assert -3.0 < entry["reward"] < 1.0  # the gold reward's range
        assert math.isclose(entry["reward"], entry["rewards/gold_reward_for_trl/mean"], abs_tol=1e-6)
    assert any((p - b).abs().max() > 0 for p, b in zip(model.parameters(), before))
    assert not model.training
