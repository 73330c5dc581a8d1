"""The synthetic world of the course: a grammar of film reviews and fairy-tale stories.

Every text in the course (pretraining corpus, prompts, rewards) comes from ONE grammar.
A text is lowercase words and the punctuation tokens ``,`` ``.`` ``!``, all separated by
single spaces, so ``text.split()`` gives the tokens::

    the film was not good , but the actors were great .
    i did not like the ending . you should skip it .
    once upon a time , there was an old king who lived in a quiet village . he ...

How the grammar is written
--------------------------
The tables live in ``grammar.json`` beside this module (data, not code), checked when it loads.
``CATEGORIES`` maps a category name (UPPER case) to interchangeable words, e.g.
``ADJ+`` (great, charming, ...) and ``ADJ-`` (dull, awful, ...). ``RULES`` maps a
nonterminal (``<name>``) to weighted alternatives (a plain string has weight 1, weight 0
means "grammatical but never sampled"); each alternative is a string of space-separated
symbols: ``<nonterminal>``, ``CATEGORY`` or a literal token::

    "<adjp{p}>": [(4, "ADJ{p}"), (3, "INTENS ADJ{p}"), (1, "NEG ADJ{q}"), ...]

* ``{p}`` in a rule is a polarity, ``+`` or ``-``, and ``{q}`` is the opposite one, so the
  rule above is two rules: ``<adjp+>`` (great / very great / not dull) and ``<adjp->``.
  Polarity only steers the *sampler* towards coherent reviews (a positive review praises,
  a "but" turns); the checker merges ``<x+>`` and ``<x->`` into one phrase, so the
  incoherent "although the plot was dull , the acting was bad ." is still grammatical.
* ``{g}`` is a story's gender, ``m`` or ``f``: it keeps "he" / "his" or "she" / "her"
  consistent from the first sentence to the last, and the checker enforces it.
* A category with suffix ``_v`` / ``_c`` keeps only its vowel- / consonant-initial words,
  so the grammar writes "a" ``ADJ+_c`` and "an" ``ADJ+_v`` (a great film, an awful one).
* No rule refers to itself, directly or not, so the language is finite-state (regular),
  and texts have bounded depth: reviews are 1-3 sentences, stories 4-8 sentences.

One source of truth
-------------------
Sampling and checking walk the same table. A *configuration* is the tuple of grammar
symbols still to be produced; sampling pops the first symbol and either replaces a
nonterminal by one of its alternatives (chosen by weight) or emits one word of a
category. Checking keeps the *set* of all configurations consistent with the tokens read
so far (an NFA simulation); a text is grammatical iff the set ends up containing the
empty configuration. The sets are cached as states of a lazily built DFA, so a text that
follows already-seen shapes is checked with one dictionary look-up per token, and a
prefix is extendable iff its set is not empty (``grammatical_prefix_length``).

Sentiment
---------
``SENTIMENT`` gives the polarity in [-1, 1] of the sentiment-bearing words;
``token_sentiment`` applies negation and intensifiers (the exact rule is in its
docstring). The grammar makes sentiment non-trivial to read: "not boring" is praise,
"although the plot was clever , the actors were awful ." is a complaint.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterable
from importlib import resources
from typing import NamedTuple

__all__ = [
    "CATEGORIES",
    "INTENSIFIERS",
    "NEGATIVE_WORDS",
    "NEGATORS",
    "POSITIVE_WORDS",
    "PUNCTUATION",
    "REVIEW_PROMPTS",
    "RULES",
    "SENTIMENT",
    "STORY_PROMPTS",
    "grammatical_prefix_length",
    "is_grammatical",
    "review_prompts",
    "sample_completion",
    "sample_review",
    "sample_reviews",
    "sample_stories",
    "sample_story",
    "split_sentences",
    "story_prompts",
    "token_sentiment",
    "vocabulary",
]

PUNCTUATION = (",", ".", "!")
SENTENCE_END = frozenset({".", "!"})


# ---------------------------------------------------------------------------
# The tables: words, rules, sentiment and prompts, read from grammar.json.
# ---------------------------------------------------------------------------

GRAMMAR_FILE = "grammar.json"  # next to this module, shipped in the package
_FORMAT = "rlcourse-grammar/1"
_TABLES = ("categories", "rules", "sentiment", "negators", "intensifiers", "scope_breakers", "review_prompts",
           "story_prompts")


class GrammarFileError(ValueError):
    """``grammar.json`` is not what this module can read."""


def _is_words(value) -> bool:
    return isinstance(value, str) and bool(value.split())


def _is_alternative(value) -> bool:
    """A rule's alternative: symbols (weight 1), or ``[weight, symbols]`` with a number weight ("" produces nothing)."""
    if isinstance(value, str):
        return True
    return (isinstance(value, list) and len(value) == 2 and type(value[0]) in (int, float)
            and not isinstance(value[0], bool) and isinstance(value[1], str))


def _validate(raw, where: str) -> None:
    """Raise :class:`GrammarFileError` with one sentence naming the first entry that has the wrong shape."""
    def require(ok: bool, what: str) -> None:
        if not ok:
            raise GrammarFileError(f"{where}: {what}; restore the file from the package (pip install --force-reinstall "
                                   "rlcourse) or fix that entry.")

    require(isinstance(raw, dict) and raw.get("format") == _FORMAT, f"expected a JSON object with format {_FORMAT!r}")
    for key in _TABLES:
        require(key in raw, f"the table {key!r} is missing")
    for name, words in raw["categories"].items():
        require(_is_words(words), f"category {name!r} must be a string of space-separated words")
    for name, alternatives in raw["rules"].items():
        require(isinstance(alternatives, list) and alternatives, f"rule {name!r} must be a non-empty list")
        for k, alt in enumerate(alternatives):
            require(_is_alternative(alt), f"rule {name!r}, alternative {k}, must be a string of symbols or "
                                          "[weight, string]")
    for name in ("sentiment", "intensifiers"):
        for word, value in raw[name].items():
            require(type(value) in (int, float) and not isinstance(value, bool), f"{name}[{word!r}] must be a number")
    for word, value in raw["sentiment"].items():
        require(-1 <= value <= 1, f"sentiment[{word!r}] = {value} must lie in [-1, 1]")
    for name in ("negators", "scope_breakers", "review_prompts", "story_prompts"):
        require(isinstance(raw[name], list) and all(_is_words(w) for w in raw[name]),
                f"{name} must be a list of non-empty strings")


def load_tables(text: str | None = None, where: str = GRAMMAR_FILE) -> dict:
    """The grammar's tables, read from ``grammar.json`` (or from ``text``) and checked.

    Returns a dict with ``categories`` (name -> tuple of words), ``rules`` (name -> list of
    alternatives: a string, or a ``(weight, string)`` tuple), ``sentiment`` and ``intensifiers``
    (word -> number), ``negators`` and ``scope_breakers`` (frozensets) and the prompts (tuples).
    """
    if text is None:
        text = resources.files(__package__).joinpath(GRAMMAR_FILE).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise GrammarFileError(f"{where} is not valid JSON ({error}); restore it from the package.") from None
    _validate(raw, where)
    return {
        "categories": {name: tuple(words.split()) for name, words in raw["categories"].items()},
        "rules": {name: [a if isinstance(a, str) else (a[0], a[1]) for a in alts] for name, alts in raw["rules"].items()},
        "sentiment": dict(raw["sentiment"]),
        "intensifiers": dict(raw["intensifiers"]),
        "negators": frozenset(raw["negators"]),
        "scope_breakers": frozenset(raw["scope_breakers"]),
        "review_prompts": tuple(raw["review_prompts"]),
        "story_prompts": tuple(raw["story_prompts"]),
    }


_LOADED = load_tables()
CATEGORIES: dict[str, tuple[str, ...]] = _LOADED["categories"]
"""Word categories: words in one category are interchangeable in every rule."""
RULES: dict[str, list[str | tuple[float, str]]] = _LOADED["rules"]
"""Rules. Weights only matter for sampling; checking accepts every alternative."""
SENTIMENT: dict[str, float] = _LOADED["sentiment"]
"""Sentiment lexicon: the polarity in [-1, 1] of each sentiment-bearing word."""
POSITIVE_WORDS: frozenset[str] = frozenset(w for w, s in SENTIMENT.items() if s > 0)
NEGATIVE_WORDS: frozenset[str] = frozenset(w for w, s in SENTIMENT.items() if s < 0)
NEGATORS: frozenset[str] = _LOADED["negators"]
"""Flip and halve the next sentiment word of the same clause ("less boring" is praise)."""
INTENSIFIERS: dict[str, float] = _LOADED["intensifiers"]
"""Scale the sentiment word right after them (through further intensifiers / negators)."""
SCOPE_BREAKERS: frozenset[str] = _LOADED["scope_breakers"]
"""Clause boundaries: a pending negation or intensifier does not cross them."""
REVIEW_PROMPTS: tuple[str, ...] = _LOADED["review_prompts"]
"""Short prefixes the grammar can finish both positively and negatively."""
STORY_PROMPTS: tuple[str, ...] = _LOADED["story_prompts"]

# ---------------------------------------------------------------------------
# Compiling the table: templates -> concrete rules, symbols -> word sets.
# ---------------------------------------------------------------------------

_POLARITIES = ({"{p}": "+", "{q}": "-"}, {"{p}": "-", "{q}": "+"})
_GENDERS = ({"{g}": "m"}, {"{g}": "f"})
_VOWELS = frozenset("aeiou")

Configuration = tuple[str, ...]
"""Grammar symbols still to be produced, first symbol first; () means the text is complete."""


def _fill(text: str, env: dict[str, str]) -> str:
    for key, value in env.items():
        text = text.replace(key, value)
    return text


def _instantiate(name: str, alternatives: list) -> Iterable[tuple[str, list]]:
    """Yield the concrete (name, alternatives) of one rule, expanding {p}/{q} and {g}."""
    envs: list[dict[str, str]] = [{}]
    if "{p}" in name:
        envs = [{**env, **pol} for env in envs for pol in _POLARITIES]
    if "{g}" in name:
        envs = [{**env, **gen} for env in envs for gen in _GENDERS]
    for env in envs:
        filled = [_fill(a, env) if isinstance(a, str) else (a[0], _fill(a[1], env)) for a in alternatives]
        yield _fill(name, env), filled


def _category_words(symbol: str) -> tuple[str, ...] | None:
    """Words of a category symbol (with an optional _v / _c filter), None if not a category."""
    base, _, initial = symbol.rpartition("_")
    if initial in ("v", "c") and base in CATEGORIES:
        keep_vowel = initial == "v"
        return tuple(w for w in CATEGORIES[base] if (w[0] in _VOWELS) == keep_vowel)
    return CATEGORIES.get(symbol)


class _Table(NamedTuple):
    """Concrete rules: nonterminal -> alternatives (symbol tuples) and their weights."""

    alternatives: dict[str, tuple[Configuration, ...]]
    weights: dict[str, tuple[float, ...]]


def _compile(rules: dict) -> tuple[_Table, dict[str, tuple[str, ...]]]:
    """Return the concrete rule table and the words of every terminal symbol."""
    alternatives, weights = {}, {}
    for template, alts in rules.items():
        for name, concrete in _instantiate(template, alts):
            pairs = [(1.0, alt) if isinstance(alt, str) else alt for alt in concrete]
            alternatives[name] = tuple(tuple(text.split()) for _, text in pairs)
            weights[name] = tuple(float(weight) for weight, _ in pairs)
            if min(weights[name]) < 0 or sum(weights[name]) <= 0:
                raise ValueError(f"Rule {name} needs weights >= 0 with a positive sum, got {weights[name]}.")
    terminals: dict[str, tuple[str, ...]] = {}
    for name, alts in alternatives.items():
        for symbol in (s for alt in alts for s in alt):
            if symbol.startswith("<"):
                if symbol not in alternatives:
                    raise ValueError(f"Rule {name} uses {symbol}, which has no rule; add it to RULES.")
            elif symbol not in terminals:
                terminals[symbol] = _terminal_words(symbol, name)
    _check_not_recursive(alternatives)
    return _Table(alternatives, weights), terminals


def _erase(symbol: str) -> str:
    """<adjp+> and <adjp-> -> <adjp±>; categories and words stay as they are."""
    return symbol.replace("+", "±").replace("-", "±") if symbol.startswith("<") else symbol


def _erase_polarity(table: _Table) -> _Table:
    """Merge each <x+> / <x-> pair of rules into one <x±> rule with both sets of alternatives.

    Polarity only steers the sampler towards coherent reviews; for the checker "although
    the plot was dull , the acting was bad ." is as grammatical as the sampled contrasts.
    """
    merged: dict[str, dict[Configuration, float]] = {}
    for name, alts in table.alternatives.items():
        target = merged.setdefault(_erase(name), {})
        for alt, weight in zip(alts, table.weights[name]):
            alt = tuple(_erase(symbol) for symbol in alt)
            target[alt] = target.get(alt, 0.0) + weight
    return _Table({n: tuple(a) for n, a in merged.items()}, {n: tuple(a.values()) for n, a in merged.items()})


def _terminal_words(symbol: str, rule: str) -> tuple[str, ...]:
    words = _category_words(symbol)
    if words is None:
        if not (symbol.isalpha() and symbol.islower()) and symbol not in PUNCTUATION:
            raise ValueError(f"Rule {rule} uses {symbol!r}: not a category, a lowercase word or punctuation.")
        words = (symbol,)
    if not words:
        raise ValueError(f"Rule {rule} uses {symbol}, which has no words; remove that alternative.")
    return words


def _check_not_recursive(alternatives: dict[str, tuple[Configuration, ...]]) -> None:
    """Raise if a rule can reach itself: configurations (and texts) would be unbounded."""
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"Rules are recursive: {' -> '.join(path + (name,))}.")
        if name not in done:
            for symbol in {s for alt in alternatives[name] for s in alt if s.startswith("<")}:
                visit(symbol, path + (name,))
            done.add(name)

    for name in alternatives:
        visit(name, ())


_SAMPLING, _TERMINAL_WORDS = _compile(RULES)
_CHECKING = _erase_polarity(_SAMPLING)
_TERMINAL_SETS = {symbol: frozenset(words) for symbol, words in _TERMINAL_WORDS.items()}


def _reachable_words(start: str) -> frozenset[str]:
    seen, todo, words = {start}, [start], set()
    while todo:
        for symbol in (s for alt in _SAMPLING.alternatives[todo.pop()] for s in alt):
            if symbol in _SAMPLING.alternatives:
                if symbol not in seen:
                    seen.add(symbol)
                    todo.append(symbol)
            else:
                words.update(_TERMINAL_WORDS[symbol])
    return frozenset(words)


_VOCABULARY = tuple(sorted(_reachable_words("<text>")))
_VOCABULARY_SET = frozenset(_VOCABULARY)


def vocabulary() -> list[str]:
    """Every token the grammar can produce (reviews and stories), sorted.

    >>> words = vocabulary()
    >>> ("," in words, "masterpiece" in words, "dragon" in words, words == sorted(words))
    (True, True, True, True)
    """
    return list(_VOCABULARY)


# ---------------------------------------------------------------------------
# Sampling: walk the rules, choosing alternatives by weight and words uniformly.
# ---------------------------------------------------------------------------


def _generate(pending: Configuration, rng: random.Random, table: _Table = _SAMPLING) -> list[str]:
    """Produce the tokens of one random completion of a configuration."""
    stack = list(reversed(pending))  # top of the stack = next symbol
    tokens: list[str] = []
    while stack:
        symbol = stack.pop()
        if symbol in table.alternatives:
            chosen = rng.choices(table.alternatives[symbol], weights=table.weights[symbol])[0]
            stack.extend(reversed(chosen))
        else:
            tokens.append(rng.choice(_TERMINAL_WORDS[symbol]))
    return tokens


def sample_review(rng: random.Random) -> str:
    """One random review: 1-3 sentences, positive, negative or mixed/neutral (1/3 each).

    >>> sample_review(random.Random(3)).endswith((".", "!"))
    True
    """
    return " ".join(_generate(("<review>",), rng))


def sample_reviews(n: int, seed: int) -> list[str]:
    """``n`` reviews, the same list for the same seed.

    >>> sample_reviews(2, seed=0) == sample_reviews(2, seed=0)
    True
    """
    _check_count(n)
    rng = random.Random(seed)
    return [sample_review(rng) for _ in range(n)]


def sample_story(rng: random.Random) -> str:
    """One random story: an introduction, 2-6 events and an ending (4-8 sentences).

    >>> sample_story(random.Random(0)).split()[-1]
    '.'
    """
    return " ".join(_generate(("<story>",), rng))


def sample_stories(n: int, seed: int) -> list[str]:
    """``n`` stories, the same list for the same seed."""
    _check_count(n)
    rng = random.Random(seed)
    return [sample_story(rng) for _ in range(n)]


def _check_count(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")


def review_prompts(n: int, seed: int) -> list[str]:
    """``n`` prompts drawn with replacement from REVIEW_PROMPTS, deterministic in ``seed``.

    >>> all(p in REVIEW_PROMPTS for p in review_prompts(5, seed=1))
    True
    """
    _check_count(n)
    rng = random.Random(seed)
    return [rng.choice(REVIEW_PROMPTS) for _ in range(n)]


def story_prompts(n: int, seed: int) -> list[str]:
    """``n`` prompts drawn with replacement from STORY_PROMPTS, deterministic in ``seed``."""
    _check_count(n)
    rng = random.Random(seed)
    return [rng.choice(STORY_PROMPTS) for _ in range(n)]


def sample_completion(prefix: str, rng: random.Random) -> str:
    """A grammatical text that starts with ``prefix`` (a review or a story).

    The continuation starts from one configuration consistent with the prefix, chosen
    uniformly, so it is not exactly the grammar's conditional distribution.

    >>> sample_completion("the plot was", random.Random(0)).startswith("the plot was ")
    True
    """
    tokens = prefix.split()
    configs = _RECOGNIZER.configurations(tokens)
    if not configs:
        n_ok = grammatical_prefix_length(tokens)
        raise ValueError(f"No grammatical text starts with {prefix!r}; it breaks at token {n_ok}.")
    pending = rng.choice(sorted(configs))  # sorted: set order changes between runs
    return " ".join(tokens + _generate(pending, rng, _CHECKING))


# ---------------------------------------------------------------------------
# Checking: the set of configurations after each token, cached as a lazy DFA.
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _closure(pending: Configuration) -> frozenset[Configuration]:
    """Expand leading nonterminals until every configuration starts with a terminal (or is ())."""
    if pending and pending[0] in _CHECKING.alternatives:
        rest = pending[1:]
        return frozenset().union(*(_closure(alt + rest) for alt in _CHECKING.alternatives[pending[0]]))
    return frozenset((pending,))


class _Recognizer:
    """A DFA built on demand: state i stands for a set of configurations (an NFA state set).

    ``step`` computes a transition the first time it is needed and then remembers it, so a
    text is checked in one dictionary look-up per token once its shape has been seen.
    """

    def __init__(self, start_symbol: str) -> None:
        self._sets: list[frozenset[Configuration]] = []
        self._ids: dict[frozenset[Configuration], int] = {}
        self._moves: list[dict[str, int]] = []
        self.accepting: list[bool] = []
        self.dead = self._state(frozenset())
        self.start = self._state(_closure((start_symbol,)))

    def _state(self, configs: frozenset[Configuration]) -> int:
        if configs not in self._ids:
            self._ids[configs] = len(self._sets)
            self._sets.append(configs)
            self._moves.append({})
            self.accepting.append(() in configs)
        return self._ids[configs]

    def step(self, state: int, word: str) -> int:
        if word not in _VOCABULARY_SET:
            return self.dead
        nxt = self._moves[state].get(word)
        if nxt is None:
            configs = set()
            for pending in self._sets[state]:
                if pending and word in _TERMINAL_SETS[pending[0]]:
                    configs |= _closure(pending[1:])
            nxt = self._moves[state][word] = self._state(frozenset(configs))
        return nxt

    def run(self, tokens: list[str]) -> tuple[int, int]:
        """Return (final state, number of tokens read before the dead state)."""
        state = self.start
        for i, word in enumerate(tokens):
            nxt = self.step(state, word)
            if nxt == self.dead:
                return nxt, i
            state = nxt
        return state, len(tokens)

    def configurations(self, tokens: list[str]) -> frozenset[Configuration]:
        return self._sets[self.run(tokens)[0]]


_RECOGNIZER = _Recognizer("<text>")


def is_grammatical(text: str) -> bool:
    """True iff ``text`` is a complete review or a complete story of the grammar.

    >>> is_grammatical("the film was not good , but the actors were great .")
    True
    >>> is_grammatical("the film was good but")  # unfinished
    False
    >>> is_grammatical("the films was good .")  # agreement
    False
    """
    state, _ = _RECOGNIZER.run(text.split())
    return _RECOGNIZER.accepting[state]


def grammatical_prefix_length(tokens: list[str]) -> int:
    """Number of leading tokens that some grammatical text starts with.

    Equals ``len(tokens)`` when the whole list is a valid prefix (complete or not).

    >>> grammatical_prefix_length("the film was very".split())
    4
    >>> grammatical_prefix_length("the film film was good .".split())
    2
    """
    return _RECOGNIZER.run(list(tokens))[1]


# ---------------------------------------------------------------------------
# Sentiment and sentences.
# ---------------------------------------------------------------------------


def token_sentiment(tokens: list[str]) -> list[float]:
    """The polarity each token contributes; their sum is the text's sentiment score.

    Rule, left to right (a pure function of the tokens, grammatical or not):

    * a word of SENTIMENT contributes ``SENTIMENT[w] * scale``, times ``-0.5`` if a negator
      is pending (the negation is then used up);
    * a NEGATORS word (not, never, hardly, none, less) contributes 0 and makes a negation
      pending until the next sentiment word or clause boundary;
    * an INTENSIFIERS word contributes 0 and multiplies ``scale`` (very: 1.5, quite: 1.25,
      rather: 0.75); ``scale`` applies only to the sentiment word right after the
      intensifiers and negators, any other word resets it to 1;
    * a SCOPE_BREAKERS token (, . ! and but although because while yet) contributes 0 and
      clears pending negation and scale. Every other token contributes 0.

    >>> [round(s, 2) for s in token_sentiment("the film was not very good .".split())]
    [0.0, 0.0, 0.0, 0.0, 0.0, -0.45, 0.0]
    >>> token_sentiment("i did not like it , but it was great .".split())[3::6]  # like, great
    [-0.3, 1.0]
    """
    scores: list[float] = []
    negated, scale = False, 1.0
    for tok in tokens:
        score = 0.0
        if tok in SCOPE_BREAKERS:
            negated, scale = False, 1.0
        elif tok in NEGATORS:
            negated = True
        elif tok in INTENSIFIERS:
            scale *= INTENSIFIERS[tok]
        elif tok in SENTIMENT:
            score = SENTIMENT[tok] * scale * (-0.5 if negated else 1.0)
            negated, scale = False, 1.0
        else:
            scale = 1.0
        scores.append(score)
    return scores


def split_sentences(text: str) -> list[str]:
    """Split after every "." and "!"; an unfinished tail is kept as the last item.

    >>> split_sentences("it was great ! i loved it . you should")
    ['it was great !', 'i loved it .', 'you should']
    """
    sentences, current = [], []
    for tok in text.split():
        current.append(tok)
        if tok in SENTENCE_END:
            sentences.append(" ".join(current))
            current = []
    if current:
        sentences.append(" ".join(current))
    return sentences
