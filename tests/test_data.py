"""Tests for rlcourse.world.grammar: the grammar, its sampler, its checker and the sentiment lexicon.

Sampling and checking share one grammar table, so "every sample is grammatical" only proves
they agree; the hand-written examples and the corruption tests check that the checker
rejects what it should, and the statistics tests check that the world is rich and balanced.
"""

import doctest
import random
import statistics
import time

import pytest

import rlcourse.world.grammar as data
from rlcourse.world.grammar import (CATEGORIES, NEGATIVE_WORDS, POSITIVE_WORDS, REVIEW_PROMPTS, SENTIMENT,
                                    STORY_PROMPTS, grammatical_prefix_length, is_grammatical, review_prompts,
                                    sample_completion, sample_reviews, sample_stories, split_sentences, story_prompts,
                                    token_sentiment, vocabulary)


@pytest.fixture(scope="module")
def reviews():
    return sample_reviews(2000, seed=0)


@pytest.fixture(scope="module")
def stories():
    return sample_stories(300, seed=0)


def score(text: str) -> float:
    return sum(token_sentiment(text.split()))


# ---------------------------------------------------------------------------
# Determinism, vocabulary, doctests
# ---------------------------------------------------------------------------


def test_docstring_examples():
    assert doctest.testmod(data).failed == 0


def test_sampling_is_deterministic_by_seed():
    assert sample_reviews(50, seed=3) == sample_reviews(50, seed=3)
    assert sample_reviews(50, seed=3) != sample_reviews(50, seed=4)
    assert sample_stories(5, seed=3) == sample_stories(5, seed=3)
    assert review_prompts(20, seed=1) == review_prompts(20, seed=1)
    assert story_prompts(20, seed=1) == story_prompts(20, seed=1)
    assert sample_completion("the plot", random.Random(5)) == sample_completion("the plot", random.Random(5))


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        sample_reviews(-1, seed=0)
    assert sample_reviews(0, seed=0) == []


def test_vocabulary_is_rich_sorted_and_covers_samples(reviews, stories):
    vocab = vocabulary()
    words = [w for w in vocab if w not in data.PUNCTUATION]
    assert len(words) >= 300
    assert vocab == sorted(set(vocab))
    assert {",", "."} <= set(vocab)
    used = {tok for text in reviews + stories for tok in text.split()}
    assert used <= set(vocab)
    assert len(used) >= 0.9 * len(vocab)  # nearly every word really occurs


def test_tables_have_no_dead_entries():
    vocab = set(vocabulary())
    assert {w for words in CATEGORIES.values() for w in words} <= vocab
    assert set(SENTIMENT) <= vocab
    assert all(-1.0 <= s <= 1.0 and s != 0 for s in SENTIMENT.values())


def test_polar_categories_agree_with_the_lexicon():
    for name, words in CATEGORIES.items():
        for w in words:
            if name.endswith("+"):
                assert SENTIMENT.get(w, 0) > 0, (name, w)
            if name.endswith("-"):
                assert SENTIMENT.get(w, 0) < 0, (name, w)
    assert POSITIVE_WORDS == {w for w, s in SENTIMENT.items() if s > 0}
    assert NEGATIVE_WORDS == {w for w, s in SENTIMENT.items() if s < 0}
    assert SENTIMENT["great"] > SENTIMENT["good"] > SENTIMENT["fine"] > 0
    assert 0 > SENTIMENT["dull"] > SENTIMENT["awful"]


def test_format_is_lowercase_words_and_spaced_punctuation(reviews, stories):
    for text in reviews[:300] + stories[:50]:
        assert text == " ".join(text.split())
        assert all(tok.isalpha() and tok.islower() or tok in data.PUNCTUATION for tok in text.split())


# ---------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------


def test_every_sample_is_grammatical(reviews, stories):
    assert all(is_grammatical(r) for r in reviews)
    assert all(is_grammatical(s) for s in stories)


GRAMMATICAL = [
    "the film was not good , but the actors were great .",
    "i did not like the ending . you should skip it .",
    "what a masterpiece !",
    "the actress who played the wicked queen was brilliant .",
    "this movie was one of the worst films i have ever seen .",
    "the sequel is less boring than the original .",
    "although the plot was predictable , i really loved the songs .",
    "i watched it with my kids last night . the jokes were never funny . i would not recommend it .",
    "it was an okay film .",
    "the film was neither great nor awful .",
    "most of the jokes were quite funny .",
    "the film was good . the film was good . the film was good .",
    "although the plot was dull , the acting was bad .",  # incoherent, but grammatical
    "although the plot was clever , the actors were awful .",
    "you should watch it . you should skip it .",  # weight-0 rule: any 1-3 review sentences
    "you should watch it because the film is a long western .",  # weight-0 rule
    "once upon a time , there was an old king who lived in a quiet village . he walked to the "
    "dark forest . he found a small box under the bridge . in the end , he was very happy .",
    "lily was a young witch who lived near the river . she met an owl who was very hungry . "
    "she gave the bread to the owl . from that day on , she and the owl were best friends .",
]

UNGRAMMATICAL = [
    "",
    "the film were good .",  # number agreement
    "the actors was great .",
    "it was a excellent film .",  # a / an
    "it was an great film .",
    "the film was good",  # unfinished
    "the film was good ,",
    "The film was good .",  # format: lowercase, spaced punctuation
    "the film was good.",
    "the film was very very good .",
    "good the film was .",
    "the film was good . the film was good . the film was good . the film was good .",  # 4 sentences
    # gender: "an old king" is a he
    "once upon a time , there was an old king who lived in a quiet village . she walked to the "
    "dark forest . she found a small box under the bridge . in the end , she was very happy .",
    # a story needs 4-8 sentences
    "once upon a time , there was an old king who lived in a quiet village .",
]


@pytest.mark.parametrize("text", GRAMMATICAL)
def test_hand_written_grammatical_texts_pass(text):
    assert is_grammatical(text)


@pytest.mark.parametrize("text", UNGRAMMATICAL)
def test_hand_written_ungrammatical_texts_fail(text):
    assert not is_grammatical(text)


def rejection_rate(texts):
    return sum(not is_grammatical(t) for t in texts) / len(texts)


def test_shuffled_texts_are_rejected(reviews, stories):
    rng = random.Random(0)
    shuffled = []
    for text in reviews[:1000] + stories[:100]:
        toks = text.split()
        rng.shuffle(toks)
        if " ".join(toks) != text:
            shuffled.append(" ".join(toks))
    assert rejection_rate(shuffled) >= 0.99


def test_truncated_texts_are_rejected(reviews, stories):
    rng = random.Random(1)
    cut = []
    for text in reviews[:1000] + stories[:100]:
        toks = text.split()
        n = rng.randrange(1, len(toks))
        if toks[n - 1] not in data.SENTENCE_END:  # cutting after a whole sentence may be fine
            cut.append(" ".join(toks[:n]))
    assert rejection_rate(cut) == 1.0
    assert rejection_rate([r.rsplit(" ", 1)[0] for r in reviews[:500]]) == 1.0  # final "." dropped


def test_repeated_or_dropped_words_are_rejected(reviews, stories):
    rng = random.Random(2)
    repeated, dropped = [], []
    for text in reviews[:1000] + stories[:100]:
        toks = text.split()
        i = rng.randrange(len(toks))
        repeated.append(" ".join(toks[: i + 1] + toks[i:]))
        j = rng.randrange(len(toks) - 1)  # not the final punctuation
        dropped.append(" ".join(toks[:j] + toks[j + 1 :]))
    assert rejection_rate(repeated) >= 0.95
    # dropping an optional word ("very", "last night") legitimately stays grammatical
    assert rejection_rate(dropped) >= 0.9


def test_swapped_story_pronoun_is_rejected(stories):
    swapped = []
    for text in stories:
        toks = text.split()
        if toks.count("he") >= 2 and "she" not in toks:
            toks[toks.index("he")] = "she"
            swapped.append(" ".join(toks))
    assert len(swapped) >= 30
    assert rejection_rate(swapped) >= 0.95


def test_checker_is_fast():
    warm = sample_reviews(2000, seed=100)
    fresh = sample_reviews(2000, seed=101)
    for text in warm:
        is_grammatical(text)
    start = time.perf_counter()
    assert all(is_grammatical(text) for text in fresh)
    rate = len(fresh) / (time.perf_counter() - start)
    assert rate >= 5000, f"{rate:.0f} reviews/s"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", 0),
        ("hello", 0),
        ("the film was very", 4),  # a valid, unfinished prefix
        ("the film was good .", 5),  # complete
        ("the film was good . it", 6),  # a second sentence may follow
        ("the film film was good .", 2),
        ("the film was good . .", 5),
        ("the actors was", 2),  # agreement
        ("once upon a time , there was a old king", 8),  # "a old"
    ],
)
def test_grammatical_prefix_length_hand_cases(text, expected):
    assert grammatical_prefix_length(text.split()) == expected


def test_prefix_length_is_full_on_every_prefix_of_a_sample(reviews):
    for text in reviews[:100]:
        toks = text.split()
        for n in range(len(toks) + 1):
            assert grammatical_prefix_length(toks[:n]) == n


def test_grammar_compiler_rejects_broken_tables():
    with pytest.raises(ValueError, match="recursive"):
        data._compile({"<a>": ["x <b>"], "<b>": ["<a> y"]})
    with pytest.raises(ValueError, match="no rule"):
        data._compile({"<a>": ["x <missing>"]})
    with pytest.raises(ValueError, match="not a category"):
        data._compile({"<a>": ["NOT_A_CATEGORY"]})
    with pytest.raises(ValueError, match="positive sum"):
        data._compile({"<a>": [(0, "x")]})
    with pytest.raises(ValueError, match="no words"):
        data._compile({"<a>": ["an PRON_m_v"]})  # "he" is not vowel-initial


# ---------------------------------------------------------------------------
# Sentiment
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the movie was not good .", [0, 0, 0, 0, -0.3, 0]),
        ("the movie was very good .", [0, 0, 0, 0, 0.9, 0]),
        ("the movie was not very good", [0, 0, 0, 0, 0, -0.45]),
        ("the movie was never boring .", [0, 0, 0, 0, 0.35, 0]),
        ("i did not like it , but it was great .", [0, 0, 0, -0.3, 0, 0, 0, 0, 0, 1.0, 0]),
        ("none of the jokes were funny", [0, 0, 0, 0, 0, -0.3]),
        ("not , good", [0, 0, 0.6]),  # a negation stops at a clause boundary
        ("very the good", [0, 0, 0.6]),  # an intensifier only reaches the next word
        ("rather dull", [0, -0.45]),
        ("good good not xyzzy", [0.6, 0.6, 0, 0]),  # works on any token list
        ("", []),
    ],
)
def test_token_sentiment_hand_cases(text, expected):
    assert token_sentiment(text.split()) == pytest.approx(expected)


def test_sentiment_orders_simple_reviews():
    assert score("the movie was great .") > score("the movie was good .") > 0
    assert score("the movie was not good .") < 0 < score("the movie was not bad .")
    assert score("the movie was awful .") < score("the movie was dull .") < 0


def test_sampler_keeps_contrasts_coherent(reviews):
    """The checker ignores polarity, the sampler does not: "although" joins opposite signs."""
    pairs = []
    for review in reviews:
        for sentence in split_sentences(review):
            if sentence.startswith("although ") and sentence.count(" , ") == 1:
                first, second = sentence[len("although ") : -2].split(" , ")
                pairs.append((score(first), score(second)))
    assert len(pairs) >= 50
    assert sum(a * b < 0 for a, b in pairs) >= 0.85 * len(pairs)
    assert sum(a * b > 0 for a, b in pairs) <= 0.05 * len(pairs)  # a mild "okay" may give 0


def test_review_sentiment_is_balanced(reviews):
    scores = [score(r) for r in reviews]
    assert abs(statistics.mean(scores)) <= 0.3
    assert sum(s > 0 for s in scores) >= 0.3 * len(scores)
    assert sum(s < 0 for s in scores) >= 0.3 * len(scores)
    assert statistics.stdev(scores) >= 0.5  # not all near zero


# ---------------------------------------------------------------------------
# Shapes, lengths, diversity
# ---------------------------------------------------------------------------


def test_review_and_story_lengths(reviews, stories):
    review_lengths = [len(r.split()) for r in reviews]
    assert min(review_lengths) >= 4 and max(review_lengths) <= 55
    assert sum(5 <= n <= 45 for n in review_lengths) >= 0.98 * len(review_lengths)
    assert 12 <= statistics.mean(review_lengths) <= 25
    assert all(1 <= len(split_sentences(r)) <= 3 for r in reviews)
    story_lengths = [len(s.split()) for s in stories]
    assert min(story_lengths) >= 30 and max(story_lengths) <= 160
    assert 50 <= statistics.mean(story_lengths) <= 110
    assert all(4 <= len(split_sentences(s)) <= 8 for s in stories)


def category_shape(text: str) -> tuple:
    """Each token replaced by the categories it belongs to (literals stay themselves)."""
    member_of = {}
    for name, words in CATEGORIES.items():
        for w in words:
            member_of.setdefault(w, set()).add(name)
    return tuple(tuple(sorted(member_of[t])) if t in member_of else t for t in text.split())


def test_reviews_are_diverse(reviews):
    assert len(set(reviews)) >= 500
    assert len({category_shape(r) for r in reviews}) >= 100
    first_words = {r.split()[0] for r in reviews}
    assert len(first_words) >= 10
    for word in ("but", "although", "because", "and", "not", "never", "very", "than", "should", "i"):
        assert sum(word in r.split() for r in reviews) >= 20, word


def test_split_sentences():
    text = "it was great ! i loved it . you should"
    assert split_sentences(text) == ["it was great !", "i loved it .", "you should"]
    assert split_sentences("") == []
    assert split_sentences("a b .") == ["a b ."]


# ---------------------------------------------------------------------------
# Prompts and completions
# ---------------------------------------------------------------------------


def test_review_prompts_are_open_prefixes_with_both_signs():
    assert 20 <= len(set(REVIEW_PROMPTS)) == len(REVIEW_PROMPTS) <= 40
    rng = random.Random(0)
    for prompt in REVIEW_PROMPTS:
        toks = prompt.split()
        assert 2 <= len(toks) <= 4, prompt
        assert grammatical_prefix_length(toks) == len(toks), prompt
        assert not is_grammatical(prompt), prompt
        completions = [sample_completion(prompt, rng) for _ in range(200)]
        assert all(c.startswith(prompt + " ") and is_grammatical(c) for c in completions)
        scores = [score(c) for c in completions]
        assert max(scores) > 0 > min(scores), prompt


def test_story_prompts_are_open_prefixes_of_stories():
    assert 10 <= len(set(STORY_PROMPTS)) == len(STORY_PROMPTS) <= 40
    rng = random.Random(0)
    for prompt in STORY_PROMPTS:
        toks = prompt.split()
        assert 2 <= len(toks) <= 4 and grammatical_prefix_length(toks) == len(toks), prompt
        for _ in range(5):
            story = sample_completion(prompt, rng)
            assert is_grammatical(story) and len(split_sentences(story)) >= 4, story


def test_prompt_draws_come_from_the_tables():
    assert set(review_prompts(200, seed=0)) <= set(REVIEW_PROMPTS)
    assert len(set(review_prompts(200, seed=0))) >= 15
    assert set(story_prompts(50, seed=0)) <= set(STORY_PROMPTS)


def test_completion_of_a_bad_prefix_says_where_it_breaks():
    with pytest.raises(ValueError, match="token 2"):
        sample_completion("the film film", random.Random(0))


def test_the_grammar_tables_are_data_checked_on_load():
    """grammar.json ships in the package and loads into exactly the tables the module exposes."""
    import json
    from importlib import resources

    text = resources.files("rlcourse.world").joinpath("grammar.json").read_text(encoding="utf-8")
    tables = data.load_tables(text)
    assert tables["rules"] == data.RULES and tables["categories"] == data.CATEGORIES
    assert tables["sentiment"] == data.SENTIMENT and tables["negators"] == data.NEGATORS
    raw = json.loads(text)

    def broken(change) -> str:
        bad = json.loads(text)
        change(bad)
        with pytest.raises(data.GrammarFileError) as info:
            data.load_tables(json.dumps(bad), where="grammar.json")
        return str(info.value)

    assert "rule '<review>', alternative 0" in broken(lambda g: g["rules"]["<review>"].__setitem__(0, [1, 2]))
    assert "category 'WORK'" in broken(lambda g: g["categories"].__setitem__("WORK", ["film"]))
    assert "sentiment['great'] = 3" in broken(lambda g: g["sentiment"].__setitem__("great", 3))
    assert "'story_prompts' is missing" in broken(lambda g: g.pop("story_prompts"))
    assert "format" in broken(lambda g: g.__setitem__("format", "other/2"))
    with pytest.raises(data.GrammarFileError, match="not valid JSON"):
        data.load_tables(text[:-10])
    assert raw["format"] == "rlcourse-grammar/1"
