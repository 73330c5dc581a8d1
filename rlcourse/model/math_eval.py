"""A policy on the verifiable world: sample its responses to arithmetic problems, measure pass@k.

:func:`evaluate_policy` is what ``rlcourse pretrain-math`` writes on tiny-math's model card and
what notebook 07 reports before and after RL: the unbiased pass@k of Chen et al. 2021
(:func:`rlcourse.world.arith.pass_at_k`) from ``num_samples`` seeded samples per problem, and what
the responses look like (well-formed, valid steps, length, check steps).
"""

from __future__ import annotations

import torch

from rlcourse.model import policy
from rlcourse.utils import check
from rlcourse.world.arith import (MAX_RESPONSE_TOKENS, Problem, grade_response, parse_response,
                                  pass_at_k_by_operands)

__all__ = ["evaluate_policy", "sample_responses"]


def sample_responses(model, tokenizer, problems: list[Problem], num_samples: int, seed: int = 0,
                     temperature: float = 1.0, max_new_tokens: int = MAX_RESPONSE_TOKENS,
                     batch_size: int = 512) -> list[list[str]]:
    """``num_samples`` responses to each problem's prompt, with ``policy.generate`` (seeded).

    Returns:
        P lists of ``num_samples`` response texts (the prompt not included), in problem order.
    """
    check(type(num_samples) is int and num_samples >= 1, f"num_samples must be an int >= 1, got {num_samples!r}.")
    check(len(problems) > 0 and all(isinstance(p, Problem) for p in problems),
          "problems must be a non-empty list of arith.Problem; make them with sample_problems or held_out_problems.")
    generator = torch.Generator().manual_seed(seed)
    prompts = [p.text for p in problems for _ in range(num_samples)]  # (P · n,): each prompt n times
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        gen = policy.generate(model, tokenizer, prompts[start : start + batch_size], max_new_tokens=max_new_tokens,
                              temperature=temperature, generator=generator)
        texts += gen.texts
    return [texts[i * num_samples : (i + 1) * num_samples] for i in range(len(problems))]


def evaluate_policy(model, tokenizer, problems: list[Problem], num_samples: int = 32, ks=(1, 4, 16),
                    seed: int = 0, temperature: float = 1.0) -> dict:
    """pass@k of a policy on ``problems`` from ``num_samples`` samples each, and what its responses look like.

    Returns:
        :func:`pass_at_k_by_operands`'s dict, plus ``well_formed`` (share of responses whose every
        segment parses and that end with an answer), ``valid_steps`` (share of valid segments),
        ``mean_words`` (mean response length in words = tokens, EOS not counted), ``check_steps``
        (mean check steps per response) and the settings (``num_samples``, ``seed``, ``temperature``).
    """
    check(len(ks) > 0 and all(type(k) is int and 1 <= k <= num_samples for k in ks),
          f"every k of ks={tuple(ks)} must be an int from 1 to num_samples={num_samples}: pass@k needs at least k "
          "samples per problem, so sample more or drop the larger k.")
    responses = sample_responses(model, tokenizer, problems, num_samples, seed=seed, temperature=temperature)
    grades = [[grade_response(p, t) for t in row] for p, row in zip(problems, responses)]
    flat = [g for row in grades for g in row]
    words = [len(t.split()) for row in responses for t in row]
    checks = [sum(s.kind == "check" for s in parse_response(t)) for row in responses for t in row]
    report = pass_at_k_by_operands(problems, [[g.correct for g in row] for row in grades], ks)
    report.update(
        well_formed=sum(g.well_formed for g in flat) / len(flat),
        valid_steps=sum(sum(g.steps) for g in flat) / max(1, sum(len(g.steps) for g in flat)),
        mean_words=sum(words) / len(words),
        check_steps=sum(checks) / len(checks),
        num_samples=num_samples, seed=seed, temperature=temperature, num_problems=len(problems),
    )
    return report
