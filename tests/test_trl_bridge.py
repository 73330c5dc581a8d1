"""rlcourse.trl_bridge: the gold reward in TRL's signature, and a real GRPOTrainer run on the tiny model."""

import copy
import math

import pytest

from rlcourse import data, trl_bridge


def test_gold_reward_for_trl_joins_prompt_and_completion():
    # hand-worked in rewards.gold_reward's docstring: "the film was great ." scores tanh(1/2) = 0.4621
    scores = trl_bridge.gold_reward_for_trl(["the film was", "the film was"], ["great .", "awful ."])
    assert [round(s, 4) for s in scores] == [0.4621, -0.4621]


def test_concept_table_names_real_course_objects():
    import importlib

    for _concept, ours, _theirs in trl_bridge.CONCEPTS:
        for ref in ours.replace(",", " ").split():
            if "." in ref and ref.split(".")[0] in {"models", "rewards", "reward_model", "loops", "losses", "advantages", "dpo"}:
                module, name = ref.split(".", 1)
                assert hasattr(importlib.import_module(f"rlcourse.{module}"), name.split(" ")[0]), ref


@pytest.mark.slow
def test_run_trl_grpo_trains_the_tiny_model_with_the_gold_reward(tiny):
    pytest.importorskip("trl", reason="the optional [trl] extra is not installed (make setup installs it)")
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    before = [p.detach().clone() for p in model.parameters()]
    log = trl_bridge.run_trl_grpo(model, tokenizer, data.review_prompts(16, seed=0), max_steps=2,
                                  prompts_per_step=2, num_generations=4, max_completion_length=12)
    assert len(log) == 2
    for entry in log:
        assert -3.0 < entry["reward"] < 1.0  # the gold reward's range
        assert math.isclose(entry["reward"], entry["rewards/gold_reward_for_trl/mean"], abs_tol=1e-6)
    assert any((p - b).abs().max() > 0 for p, b in zip(model.parameters(), before))
    assert not model.training
