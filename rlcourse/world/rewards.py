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
shaping: each token earns the change it makes to the prefix's score; their sum is exactly the
score), for dense per-token rewards.

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


def _token_rewards(tokens: list[str]) -> list[float]:
    """Causal per-token gold rewards of one text (length ``max(n, 1)``), summing to its gold reward.

    Potential-based shaping (Ng, Harada & Russell 1999): ``r_t = Φ_t − Φ_{t−1}`` with
    :func:`_potentials`, and the last token also gets ``gold − Φ_n`` (−1 when the text is
    viable but unfinished, else 0), so ``Σ_t r_t = Φ_n + (gold − Φ_n) = gold``. ``r_t`` depends
    only on ``w_1 … w_t`` (and, for the last token, on the text ending there): changing a later
    token never changes an earlier reward. A sentiment word earns the rise in ``tanh(S/2)`` it
    causes, the token that breaks the grammar gets −1, a token that completes a repeated bigram
    gets the rise in the repetition penalty.
    """
    if not tokens:
        return [-FLUENCY_PENALTY]
    potentials = _potentials(tokens)  # (n + 1,)
    rewards = [potentials[t] - potentials[t - 1] for t in range(1, len(tokens) + 1)]
    rewards[-1] += gold_reward_terms(" ".join(tokens))["total"] - potentials[-1]
    return rewards


def gold_token_rewards(texts: list[str], num_tokens: int | None = None) -> torch.Tensor:
    """The gold reward spread over each text's whitespace tokens: ``Σ_t r_t = gold_reward``.

    Args:
        texts: B strings.
        num_tokens: T, the width of the result (right-padded with 0); default: the longest
            text (at least 1, where the empty text's −1 goes).

    Returns:
        ``(B, T)`` float32 per-token rewards.

    Example:
        >>> gold_token_rewards(["the film was great .", "the plot was"])
        tensor([[ 0.0000,  0.0000,  0.0000,  0.4621,  0.0000],
                [ 0.0000,  0.0000, -1.0000,  0.0000,  0.0000]])
    """
    check_texts(texts)
    rows = [_token_rewards(text.split()) for text in texts]
    longest = max((len(r) for r in rows), default=1)
    T = longest if num_tokens is None else num_tokens
    _check(
        T >= longest,
        f"num_tokens={T} is shorter than the longest text ({longest} tokens); pass num_tokens >= {longest} or None.",
    )
    out = torch.zeros(len(texts), T, dtype=torch.float64)  # (B, T)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.tensor(row, dtype=torch.float64)
    return out.float()


def gold_response_token_rewards(prompts: list[str], responses: list[str], num_tokens: int) -> torch.Tensor:
    """Per-token gold rewards aligned with the *response* tokens (dense rewards for RL).

    The text scored is ``f"{prompt} {response}"``; the prompt tokens' share of the reward
    (sentiment already in the prompt, or a penalty that lands there) is added to the first
    response token, so ``Σ_t r_t`` still equals the gold reward of the whole text. Position
    t matches the t-th sampled token (the course tokenizer has one token per word; the EOS
    right after the last word gets 0). An empty response puts everything at position 0.

    Args:
        prompts: B prompt strings; responses: B response strings (``Generation.texts``).
        num_tokens: T, the response width (e.g. ``generation.response_ids.shape[1]``).

    Returns:
        ``(B, T)`` float32.

    Example:
        >>> gold_response_token_rewards(["the film was"], ["great ."], num_tokens=3)
        tensor([[0.4621, 0.0000, 0.0000]])
    """
    check_texts(prompts, "prompts")
    check_texts(responses, "responses")
    _check(
        len(prompts) == len(responses),
        f"prompts and responses must pair up, got {len(prompts)} prompts and {len(responses)} responses.",
    )
    _check(isinstance(num_tokens, int) and num_tokens >= 1, f"num_tokens must be an int >= 1, got {num_tokens!r}.")
    out = torch.zeros(len(prompts), num_tokens, dtype=torch.float64)  # (B, T)
    for b, (prompt, response) in enumerate(zip(prompts, responses)):
        P, n = len(prompt.split()), len(response.split())
        _check(n <= num_tokens, f"response {b} has {n} tokens, more than num_tokens={num_tokens}; pass a wider T.")
        rewards = _token_rewards(f"{prompt} {response}".split())  # (P + n,) or (1,) when both are empty
        if n:
            out[b, :n] = torch.tensor(rewards[P:], dtype=torch.float64)
        out[b, 0] += sum(rewards[:P]) if n else sum(rewards)
    return out.float()


@functools.lru_cache(maxsize=4)
def best_reachable_gold_reward(num_samples: int = 10_000, seed: int = 0) -> float:
    """A yardstick for the gold reward: the best of ``num_samples`` reviews sampled from the grammar.

    About 0.98. Not a ceiling: ``tanh(S/2)`` approaches 1, and a trained policy that piles
    strong, intensified words into a fluent review scores higher (notebook 04's reach 1.00).
    Cached, so calling it twice costs nothing.
    """
    return float(gold_reward(grammar.sample_reviews(num_samples, seed=seed)).max())
