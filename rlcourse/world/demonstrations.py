"""Demonstrations for supervised fine-tuning: a prompt and a good response, written by the world.

In InstructGPT's pipeline (Ouyang et al. 2022, §3.4) labellers *write* the response they would
like to see for a prompt, and supervised fine-tuning (SFT) imitates them. The course's labeller
is the same gold process that scores responses (:mod:`rlcourse.world.rewards`): for each prompt
it drafts ``num_drafts`` grammatical continuations with the grammar's own sampler
(:func:`rlcourse.world.grammar.sample_completion`), drops the drafts longer than the response
budget, and keeps the one the gold reward likes best. So a demonstration is a fluent,
usually positive review that ends before the budget — the kind of text RL is asked to reach —
but not the best possible one (a labeller with eight drafts, not an oracle).

Demonstrations are split **by prompt** (:func:`split_by_prompt`): the held-out prompts appear in
no training demonstration, so a held-out loss measures whether SFT learned to respond, not
whether it memorised the responses to prompts it saw.

Glossary: one whitespace word is one model token (the course tokenizer is word-level).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rlcourse.utils import check as _check
from rlcourse.utils import check_texts
from rlcourse.world import grammar, rewards

__all__ = ["Demonstration", "NUM_DRAFTS", "write_demonstration", "make_demonstrations", "split_by_prompt"]

NUM_DRAFTS = 8  # drafts the simulated labeller writes per prompt before keeping its best


@dataclass(frozen=True)
class Demonstration:
    """One labeller-written example: ``prompt`` and the ``response`` that continues it (no EOS)."""

    prompt: str
    response: str

    @property
    def text(self) -> str:
        """The full text, prompt then response, as the gold reward scores it."""
        return f"{self.prompt} {self.response}"


def write_demonstration(prompt: str, rng: random.Random, num_drafts: int = NUM_DRAFTS,
                        max_response_words: int = 31) -> Demonstration:
    """The simulated labeller's response to ``prompt``: the best of ``num_drafts`` drafts by gold reward.

    Drafts whose response is longer than ``max_response_words`` words are dropped before
    choosing (a demonstration the policy could not write within its budget teaches it to be cut
    off); at least one draft must fit. Ties go to the first draft.

    Example:
        >>> demo = write_demonstration("the plot was", random.Random(0))
        >>> demo.prompt, demo.text.startswith("the plot was ")
        ('the plot was', True)
    """
    drafts = []
    for _ in range(50 * num_drafts):  # a bound, not a budget: almost every draft fits
        text = grammar.sample_completion(prompt, rng)
        response = text[len(prompt):].strip()
        if 1 <= len(response.split()) <= max_response_words:
            drafts.append(response)
        if len(drafts) == num_drafts:
            break
    _check(len(drafts) > 0, f"no draft continuing {prompt!r} fits in {max_response_words} words; raise max_response_words.")
    scores = rewards.gold_reward([f"{prompt} {r}" for r in drafts])  # (num_drafts,)
    return Demonstration(prompt, drafts[int(scores.argmax())])


def make_demonstrations(prompts: list[str], seed: int = 0, num_drafts: int = NUM_DRAFTS,
                        max_response_words: int = 31) -> list[Demonstration]:
    """One demonstration per prompt, in order, deterministic in ``seed`` (:func:`write_demonstration`).

    Args:
        prompts: the prompts to answer (e.g. ``grammar.review_prompts(n, seed)``; repeats get
            different responses).
        seed: seeds the labeller's drafts.
        num_drafts: drafts per prompt; 1 is a labeller who keeps the first thing they write.
        max_response_words: the response budget in words (= tokens), EOS not counted.
    """
    check_texts(prompts, "prompts")
    _check(len(prompts) > 0, "prompts is empty: pass at least one prompt, e.g. grammar.review_prompts(100, seed=0).")
    _check(isinstance(num_drafts, int) and num_drafts >= 1, f"num_drafts must be an int >= 1, got {num_drafts!r}.")
    rng = random.Random(seed)
    return [write_demonstration(p, rng, num_drafts, max_response_words) for p in prompts]


def split_by_prompt(demos: list[Demonstration], held_out_prompts: list[str]) -> tuple[list[Demonstration], list[Demonstration]]:
    """``(train, held_out)``: a demonstration is held out when its prompt is in ``held_out_prompts``.

    Splitting by prompt (not by demonstration) keeps every prompt on one side, so the held-out
    loss is measured on prompts SFT never saw.

    Example:
        >>> demos = [Demonstration("the film was", "good ."), Demonstration("the plot was", "dull .")]
        >>> [len(part) for part in split_by_prompt(demos, ["the plot was"])]
        [1, 1]
    """
    _check(all(isinstance(d, Demonstration) for d in demos), "demos must be a list of Demonstration.")
    held = set(held_out_prompts)
    train = [d for d in demos if d.prompt not in held]
    held_out = [d for d in demos if d.prompt in held]
    _check(len(train) > 0 and len(held_out) > 0, f"the split left {len(train)} training and {len(held_out)} held-out "
           "demonstrations; hold out some, but not all, of the demonstrations' prompts.")
    return train, held_out
