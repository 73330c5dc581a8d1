"""The gold ("human") reward: a transparent scorer that stands in for human judgement.

The gold reward :func:`gold_reward` is transparent (a formula over the grammar of
:mod:`rlcourse.world.grammar`), so the course can always measure what a policy *really* achieves. For a
text with whitespace tokens ``w_1 … w_n``:

    r_gold = tanh(S / 2) − 1[not grammatical] − λ · (repeated bigrams) / (n − 1)

* ``S = Σ_t s_t`` sums the token sentiments ``s_t`` (:func:`rlcourse.world.grammar.token_sentiment`,
  with negation and intensifiers). ``tanh`` saturates, so piling up adjectives stops
  paying: ``tanh(S/2) ∈ (−1, 1)``.
* Fluency: −1 when the text is not a complete, grammatical review or story
  (:func:`rlcourse.world.grammar.is_grammatical`), which includes a response cut off mid-sentence.
* Repetition: ``λ = 1`` times the fraction of word bigrams ``(w_t, w_{t+1})`` that
  already occurred earlier in the text, so "the film was great . the film was great ."
  scores below "the film was great .".
* The empty text scores −1.

A fluent, very positive review scores close to 1 (:func:`best_reachable_gold_reward`, the best
of 10,000 sampled reviews, is a yardstick, not a ceiling); positive word salad scores at most
about 0 (its tanh(S/2) < 1 minus the fluency penalty 1), below every fluent positive review.
:func:`gold_token_rewards` spreads the same score over the tokens causally (potential-based
shaping: each token earns the change it makes to the prefix's score, and the ``<eos>`` that ends
the text the rest; their sum is exactly the score), for dense per-token rewards.

The simulated annotators who compare responses by this reward, the preference data and the
learned reward model r_φ are in :mod:`rlcourse.reward.reward_model`.

Glossary: B texts, T tokens. One whitespace word is one model token (the course tokenizer is
word-level).
"""

from __future__ import annotations

import functools
import math

import torch

from rlcourse.world import grammar
from rlcourse.utils import check as _check
from rlcourse.utils import check_texts

__all__ = [
    "FLUENCY_PENALTY",
    "REPETITION_COEF",
    "gold_reward_terms",
    "gold_reward",
    "gold_token_rewards",
    "gold_response_token_rewards",
    "best_reachable_gold_reward",
]

FLUENCY_PENALTY = 1.0  # subtracted once from a text that is not grammatical
REPETITION_COEF = 1.0  # λ: times the fraction of repeated word bigrams


# ---------------------------------------------------------------------------
# The gold reward
# ---------------------------------------------------------------------------


def _repeated_bigrams(tokens: list[str]) -> list[bool]:
    """``flags[t]`` is True when the bigram ``(w_{t−1}, w_t)`` already occurred earlier."""
    seen: set[tuple[str, str]] = set()
    flags = [False] * len(tokens)
    for t in range(1, len(tokens)):
        bigram = (tokens[t - 1], tokens[t])
        flags[t] = bigram in seen
        seen.add(bigram)
    return flags


def gold_reward_terms(text: str) -> dict[str, float]:
    """The gold reward of one text, term by term (see the module docstring).

    Returns:
        dict: ``{"sentiment": tanh(S/2), "fluency": 0 or −1, "repetition": −λ·fraction, "total": their sum}``.

    Example:
        >>> {k: round(v, 3) for k, v in gold_reward_terms("the film was great .").items()}
        {'sentiment': 0.462, 'fluency': 0.0, 'repetition': 0.0, 'total': 0.462}
        >>> round(gold_reward_terms("great great great")["total"], 3)  # tanh(1.5) − 1 − ½: salad, repeated
        -0.595
    """
    tokens = text.split()
    if not tokens:
        return {"sentiment": 0.0, "fluency": -FLUENCY_PENALTY, "repetition": 0.0, "total": -FLUENCY_PENALTY}
    S = sum(grammar.token_sentiment(tokens))
    sentiment = math.tanh(S / 2)
    fluency = 0.0 if grammar.is_grammatical(text) else -FLUENCY_PENALTY
    fraction = sum(_repeated_bigrams(tokens)) / max(len(tokens) - 1, 1)  # repeated bigrams / bigrams
    repetition = -REPETITION_COEF * fraction if fraction else 0.0
    return {"sentiment": sentiment, "fluency": fluency, "repetition": repetition,
            "total": sentiment + fluency + repetition}


def gold_reward(texts: list[str]) -> torch.Tensor:
    """The gold ("human") reward of whole texts (prompt and response joined).

    ``r_gold = tanh(S/2) − 1[not grammatical] − λ · (repeated bigrams)/(n − 1)``, with ``S``
    the summed token sentiment (module docstring); the empty text scores −1.
    Typical range: about −2.5 (negative, broken, repetitive) to ≈ 1 (fluent and glowing).

    Args:
        texts: B strings, e.g. ``generation.full_texts()``.

    Returns:
        ``(B,)`` float32 scores.

    Example:
        >>> gold_reward(["the film was great .", "the film was awful .", "great amazing superb"])
        tensor([ 0.4621, -0.4621, -0.0949])
    """
    check_texts(texts)
    return torch.tensor([gold_reward_terms(text)["total"] for text in texts], dtype=torch.float32)  # (B,)


def _potentials(tokens: list[str]) -> list[float]:
    """``Φ_m`` for every prefix ``w_1 … w_m`` (m = 0 … n): the gold reward the prefix would get as it stands.

    ``Φ_m = tanh(S_m/2) − 1[w_1 … w_m starts no grammatical text] − λ · (repeated bigrams so far)/(m − 1)``,
    with ``S_m`` the summed sentiment of the prefix; ``Φ_0 = 0``. It reads only ``w_1 … w_m``
    (sentiment is computed left to right), so rewards built from it are causal. An unfinished
    but viable prefix is not penalised: a story in progress is not yet wrong.
    """
    sentiment = grammar.token_sentiment(tokens)  # (n,) s_t, left to right
    viable = grammar.grammatical_prefix_length(tokens)  # prefixes up to this length start a grammatical text
    repeated = _repeated_bigrams(tokens)  # (n,)
    potentials, S, count = [0.0], 0.0, 0
    for m in range(1, len(tokens) + 1):
        S += sentiment[m - 1]
        count += repeated[m - 1]
        potential = math.tanh(S / 2) - (FLUENCY_PENALTY if m > viable else 0.0)
        if count:
            potential -= REPETITION_COEF * count / max(m - 1, 1)
        potentials.append(potential)
    return potentials


def _token_rewards(tokens: list[str], finished: bool) -> list[float]:
    """Causal per-token gold rewards of one text, summing to its gold reward.

    Potential-based shaping (Ng, Harada & Russell 1999) with ``γ = 1``: word ``t`` earns
    ``r_t = Φ_t − Φ_{t−1}`` (:func:`_potentials`), and whatever the finished text's score still
    owes, ``gold − Φ_n`` (−1 when the text is viable but unfinished, else 0), goes to the token
    that decides it:

    * ``finished``: the ``<eos>`` after the last word, at position ``n`` (the result has ``n + 1``
      entries). Ending the text is an action; its reward is paid when it is taken, so no
      word's reward depends on whether the next token is ``<eos>``.
    * not ``finished`` (cut off at the length limit, no ``<eos>``): the last word, position
      ``n − 1`` (``n`` entries). The cut is the environment's, not a later token's.

    So ``Σ_t r_t = Φ_n + (gold − Φ_n) = gold``, and ``r_t`` reads only tokens ``≤ t``: changing
    any later token, ``<eos>`` included, never changes it. A sentiment word earns the rise in
    ``tanh(S/2)`` it causes, the token that breaks the grammar gets −1, a token that completes a
    repeated bigram gets the rise in the repetition penalty. The empty text gets ``[−1]``.
    """
    if not tokens:
        return [-FLUENCY_PENALTY]
    potentials = _potentials(tokens)  # (n + 1,)
    rewards = [potentials[t] - potentials[t - 1] for t in range(1, len(tokens) + 1)]  # (n,)
    rest = gold_reward_terms(" ".join(tokens))["total"] - potentials[-1]  # gold − Φ_n
    if finished:
        rewards.append(rest)  # on <eos>: (n + 1,)
    else:
        rewards[-1] += rest  # cut off: on the last word
    return rewards


def _finished_flags(finished, count: int, name: str) -> list[bool]:
    """``finished`` as ``count`` Python bools: one bool for all, or a sequence / ``(B,)`` bool tensor."""
    if isinstance(finished, bool):
        return [finished] * count
    flags = finished.tolist() if isinstance(finished, torch.Tensor) else list(finished)
    _check(
        len(flags) == count and all(isinstance(f, bool) for f in flags),
        f"finished must be a bool or {count} bools, one per {name} (e.g. generation.finished), got {finished!r}.",
    )
    return flags


def gold_token_rewards(texts: list[str], num_tokens: int | None = None, finished=True) -> torch.Tensor:
    """The gold reward spread over each text's tokens, causally: ``Σ_t r_t = gold_reward``.

    Position ``t < n`` is the t-th whitespace word; a finished text's ``<eos>`` is position ``n``
    and carries ``gold − Φ_n`` (the −1 of a text that stops unfinished lands there, not on the
    last word). See :func:`_token_rewards`.

    Args:
        texts: B strings.
        num_tokens: T, the width of the result (right-padded with 0); default: the longest
            row (``n + 1`` for a finished text, ``n`` for a cut one, 1 for the empty text).
        finished: True (default) when each text ended with ``<eos>``; False when it was cut off
            without one (the last word then carries ``gold − Φ_n``); or one bool per text.

    Returns:
        ``(B, T)`` float32 per-token rewards.

    Example:
        >>> gold_token_rewards(["the film was great .", "the plot was"])
        tensor([[ 0.0000,  0.0000,  0.0000,  0.4621,  0.0000,  0.0000],
                [ 0.0000,  0.0000,  0.0000, -1.0000,  0.0000,  0.0000]])
        >>> gold_token_rewards(["the plot was"], finished=False)  # cut off: no <eos> to pay
        tensor([[ 0.,  0., -1.]])
    """
    check_texts(texts)
    flags = _finished_flags(finished, len(texts), "text")
    rows = [_token_rewards(text.split(), done) for text, done in zip(texts, flags)]
    longest = max((len(r) for r in rows), default=1)
    T = longest if num_tokens is None else num_tokens
    _check(
        T >= longest,
        f"num_tokens={T} is shorter than the longest text ({longest} tokens, <eos> included); "
        f"pass num_tokens >= {longest} or None.",
    )
    out = torch.zeros(len(texts), T, dtype=torch.float64)  # (B, T)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.tensor(row, dtype=torch.float64)
    return out.float()


def gold_response_token_rewards(prompts: list[str], responses: list[str], num_tokens: int,
                                finished=None) -> torch.Tensor:
    """Per-token gold rewards aligned with the *response* tokens (dense rewards for RL).

    The text scored is ``f"{prompt} {response}"``. Position ``t < n`` is the t-th sampled word
    (the course tokenizer has one token per word); a finished response's ``<eos>`` is position
    ``n`` and carries ``gold − Φ`` (the −1 of a story that stops unfinished); a response cut off
    without ``<eos>`` has it on its last word (:func:`_token_rewards`). The prompt tokens' share
    (sentiment already in the prompt, or a penalty that lands there) is added to position 0,
    which no response token precedes. ``Σ_t r_t`` is the gold reward of the whole text, and no
    ``r_t`` depends on a later token, ``<eos>`` included.

    Args:
        prompts: B prompt strings; responses: B response strings (``Generation.texts``).
        num_tokens: T, the response width (e.g. ``generation.response_ids.shape[1]``).
        finished: ``(B,)`` bools, True where the response ended with ``<eos>``
            (``generation.finished``). Default: a response shorter than ``num_tokens`` words
            ended with ``<eos>``, one of exactly ``num_tokens`` was cut off (true of a
            :class:`~rlcourse.model.policy.Generation` whose width is ``num_tokens``).

    Returns:
        ``(B, T)`` float32.

    Example:
        >>> gold_response_token_rewards(["the film was", "the film was"], ["great .", "great"], num_tokens=3)
        tensor([[ 0.4621,  0.0000,  0.0000],
                [ 0.4621, -1.0000,  0.0000]])
    """
    check_texts(prompts, "prompts")
    check_texts(responses, "responses")
    _check(
        len(prompts) == len(responses),
        f"prompts and responses must pair up, got {len(prompts)} prompts and {len(responses)} responses.",
    )
    _check(isinstance(num_tokens, int) and num_tokens >= 1, f"num_tokens must be an int >= 1, got {num_tokens!r}.")
    lengths = [len(response.split()) for response in responses]
    flags = ([n < num_tokens for n in lengths] if finished is None
             else _finished_flags(finished, len(responses), "response"))
    out = torch.zeros(len(prompts), num_tokens, dtype=torch.float64)  # (B, T)
    for b, (prompt, response, n, done) in enumerate(zip(prompts, responses, lengths, flags)):
        _check(n + done <= num_tokens,
               f"response {b} has {n} tokens{' and <eos>' if done else ''}, more than num_tokens={num_tokens}; "
               "pass a wider T.")
        P = len(prompt.split())
        rewards = _token_rewards(f"{prompt} {response}".split(), done)  # (P + n + done,), or (1,) when both are empty
        if n or done:
            out[b, : n + done] = torch.tensor(rewards[P:], dtype=torch.float64)
        out[b, 0] += sum(rewards[:P]) if (n or done) else sum(rewards)
    return out.float()


@functools.lru_cache(maxsize=4)
def best_reachable_gold_reward(num_samples: int = 10_000, seed: int = 0) -> float:
    """A yardstick for the gold reward: the best of ``num_samples`` reviews sampled from the grammar.

    About 0.98. Not a ceiling: ``tanh(S/2)`` approaches 1, and a trained policy that piles
    strong, intensified words into a fluent review scores higher (notebook 04's reach 1.00).
    Cached, so calling it twice costs nothing.
    """
    return float(gold_reward(grammar.sample_reviews(num_samples, seed=seed)).max())
