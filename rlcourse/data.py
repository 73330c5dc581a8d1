"""The synthetic world of the course: a grammar of film reviews and fairy-tale stories.

Every text in the course (pretraining corpus, prompts, rewards) comes from ONE grammar.
A text is lowercase words and the punctuation tokens ``,`` ``.`` ``!``, all separated by
single spaces, so ``text.split()`` gives the tokens::

    the film was not good , but the actors were great .
    i did not like the ending . you should skip it .
    once upon a time , there was an old king who lived in a quiet village . he ...

How the grammar is written
--------------------------
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
import random
from collections.abc import Iterable
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


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# ---------------------------------------------------------------------------
# Word categories: words in one category are interchangeable in every rule.
# ---------------------------------------------------------------------------

_SHARED_CHARACTERS = "farmer child thief knight wizard orphan archer"
_MALE = "king prince boy man fisherman"
_FEMALE = "queen princess girl woman witch"

CATEGORIES: dict[str, tuple[str, ...]] = {
    # --- films: what is reviewed -------------------------------------------------
    "WORK": _words("film movie story comedy drama thriller musical western sequel"),
    "WORKS": _words("films movies stories comedies dramas thrillers musicals westerns sequels"),
    "PART": _words(
        "plot story script ending soundtrack music dialogue acting cast villain hero "
        "twist atmosphere humor pacing"
    ),
    "PARTS": _words("actors characters jokes scenes effects songs performances twists"),
    "PERSON": _words("actor actress star comedian"),
    "MASS": _words("action tension humor dialogue music romance"),
    "BE": _words("was is"),
    "BE_PL": _words("were are"),
    # --- films: judgement ---------------------------------------------------------
    "ADJ+": _words(
        "great good excellent wonderful brilliant amazing superb beautiful charming "
        "clever moving funny stunning perfect lovely enjoyable "
        "powerful memorable thrilling impressive original hilarious exciting"
    ),
    "ADJ-": _words(
        "bad awful terrible boring dull weak poor horrible dreadful tedious silly stupid "
        "forgettable predictable messy confusing slow painful annoying pointless "
        "lifeless disappointing awkward mediocre"
    ),
    "ADJ0": _words("fine okay decent average ordinary simple long short quiet strange"),
    "TOO": _words("long short slow simple dark quiet predictable silly"),
    "INTENS": _words("very really quite truly so extremely incredibly rather"),
    "INTENS_ATTR": _words("very really truly incredibly extremely rather"),
    "INTENS_NOT": _words("very really quite particularly that"),
    "NEG": _words("not never hardly"),
    "TOTAL": _words("total complete real absolute"),
    "GEM+": _words("masterpiece gem triumph treat delight joy classic achievement"),
    "GEM-": _words("mess disaster failure bore letdown chore flop embarrassment"),
    "LOVED+": _words("loved liked enjoyed adored admired"),
    "LOVED-": _words("hated disliked despised"),
    "LOVE+": _words("like love enjoy admire"),
    "LOVE-": _words("hate dislike"),
    "FELT+": _words("impressed moved amazed charmed delighted"),
    "FELT-": _words("bored annoyed disappointed confused unimpressed"),
    "REACT+": _words("laugh smile cheer"),
    "REACT-": _words("yawn cringe groan"),
    "REACT0": _words("cry think"),
    "ADV+": _words("beautifully brilliantly perfectly cleverly"),
    "ADV-": _words("poorly badly clumsily awkwardly"),
    "MADE": _words("shot written directed acted edited made"),
    "SUPER+": _words("best finest greatest funniest"),
    "SUPER-": _words("worst dullest weakest silliest"),
    "COMP+": _words("better stronger funnier"),
    "COMP-": _words("worse weaker duller"),
    "THINK": _words("think thought felt"),
    "OPENER0": _words("overall honestly"),
    "OPENER+": _words("thankfully luckily fortunately"),
    "OPENER-": _words("sadly unfortunately"),
    "FAMILY": _words("family friends kids wife brother"),
    "QUANT": _words("most some all many"),
    "EXPECT": _words("high low no"),
    # --- stories ------------------------------------------------------------------
    "CHAR_m": _words(f"{_MALE} {_SHARED_CHARACTERS}"),
    "CHAR_f": _words(f"{_FEMALE} {_SHARED_CHARACTERS}"),
    "CHAR": _words(f"{_MALE} {_FEMALE} {_SHARED_CHARACTERS}"),
    "CREATURE": _words("dog cat fox wolf owl bear bird dragon"),
    "CHAR_ADJ": _words(
        "old young brave kind clever small quiet lonely happy sad wise gentle proud tired wicked"
    ),
    "NAME_m": _words("tom sam jack leo ben"),
    "NAME_f": _words("anna mia lucy emma lily"),
    "PRON_m": ("he",),
    "PRON_f": ("she",),
    "POSS_m": ("his",),
    "POSS_f": ("her",),
    "OBJ_m": ("him",),
    "OBJ_f": ("her",),
    "PLACE": _words("village forest castle river mountain lake cave farm bridge house island orchard"),
    "PLACE_ADJ": _words("quiet dark old small cold beautiful empty ancient icy"),
    "THING": _words("box key coin letter sword ring book apple bread egg"),
    "THING_ADJ": _words("small old golden broken strange magic wooden ancient"),
    "MOTION": _words("walked ran went rode returned wandered"),
    "TOWARD": _words("to toward through across into"),
    "LOC": _words("near under behind inside"),
    "SEE": _words("saw noticed discovered"),
    "FEEL": _words("happy sad lonely afraid scared angry proud excited tired hungry safe brave"),
    "INTRANS": _words("laughed cried smiled slept waited"),
    "MANNER": _words("quietly happily sadly slowly bravely"),
    "WEATHER": _words("cold dark warm sunny rainy quiet long strange icy"),
    "TIMENOUN": _words("day night morning evening winter"),
    "STATE": _words("lost broken gone missing"),
    "NEED": _words("help advice bread water food"),
    "CHORE": _words("carry find open fix hide"),
    "SUPER_STORY": _words("best worst happiest saddest strangest"),
}

# ---------------------------------------------------------------------------
# Rules. Weights only matter for sampling; checking accepts every alternative.
# ---------------------------------------------------------------------------

RULES: dict[str, list[str | tuple[float, str]]] = {
    "<text>": ["<review>", "<story>"],
    # === reviews: one third positive, one third negative, one third mixed/neutral ===
    "<review>": [
        "<review+>", "<review->", "<review0>",
        # Weight 0: accepted, never sampled. Any 1-3 review sentences, in any order, make a
        # grammatical review (clashing polarities are accepted anyway: see the docstring).
        (0, "<any_sent>"), (0, "<any_sent> <any_sent>"), (0, "<any_sent> <any_sent> <any_sent>"),
    ],
    "<any_sent>": ["<sent+>", "<sent->", "<neutral>", "<mixed>", "<advice+>", "<advice->", "<context>"],
    "<review{p}>": [
        (3, "<sent{p}>"),
        (4, "<sent{p}> <next{p}>"),
        (2, "<short{p}> <next{p}> <next{p}>"),
        (2, "<context> <sent{p}>"),
        (1, "<context> <short{p}> <next{p}>"),
        (1, "<advice{p}> <sent{p}>"),
    ],
    "<next{p}>": [(6, "<sent{p}>"), (3, "<advice{p}>"), (1, "<neutral>"), (1, "<mixed>")],
    "<review0>": [
        (3, "<mixed>"),
        (2, "<sent+> <sent->"),
        (2, "<sent-> <sent+>"),
        (2, "<neutral>"),
        (1, "<context> <neutral>"),
        (1, "<context> <mixed>"),
        (1, "<neutral> <mixed>"),
        (1, "<mixed> <neutral>"),
    ],
    # --- sentences ---
    "<sent{p}>": [
        (5, "<short{p}>"),
        (2, "<simple{p}> , and <simple{p}> ."),
        (2, "<simple{q}> , but <simple{p}> ."),
        (1, "although <simple{q}> , <simple{p}> ."),
        (1, "<simple{p}> because <simple{p}> ."),
    ],
    "<short{p}>": [
        (8, "<opener{p}> <clause{p}> ."),
        (1, "what <a_work{p}> !"),
        (1, "what <a_gem{p}> !"),
        (1, "<subj_sg> BE <adjp{p}> and <adjp{p}> ."),
    ],
    "<mixed>": [
        "<simple+> , but <simple-> .",
        "<simple-> , but <simple+> .",
        "although <simple+> , <simple-> .",
        "although <simple-> , <simple+> .",
        "<simple+> , while <simple-> .",
        "<subj_sg> BE <adjp+> but <adjp-> .",
        "<subj_sg> BE <adjp-> but <adjp+> .",
        "<subj_pl> BE_PL <adjp+> , yet <adjp-> .",
    ],
    "<neutral>": [
        (3, "<opener0> <subj_sg> BE <adjp0> ."),
        (2, "<opener0> <subj_work> BE <a_work0> ."),
        (1, "i have mixed feelings about <thing> ."),
        (1, "<subj_sg> BE neither ADJ+ nor ADJ- ."),
        (1, "it is <a_work0> about <a_char> ."),
        (1, "<thing> made me REACT0 ."),
        (1, "i do not know what to think ."),
    ],
    "<context>": [
        "i watched it with my FAMILY <watched_when> .",
        "i saw this WORK <venue> <watched_when> .",
        "we watched it <venue> .",
        "i went in with EXPECT expectations .",
        "my FAMILY and i saw it <watched_when> .",
    ],
    "<watched_when>": [
        (3, ""), "last night", "last week", "yesterday", "this weekend",
    ],
    "<venue>": ["at the cinema", "at home", "on tv"],
    "<opener{p}>": [(6, "<opener0>"), (1, "OPENER{p} ,")],
    "<opener0>": [(8, ""), "OPENER0 ,", "in my opinion ,", "to be honest ,", "all in all ,"],
    # --- clauses (a sentence without its final punctuation) ---
    "<clause{p}>": [
        (6, "<simple{p}>"),
        (1, "<subj_work> BE not <a_work{q}>"),
        (1, "<subj_work> BE <superlative{p}>"),
        (4, "<opinion{p}>"),
        (2, "<compare{p}>"),
        (1, "<thing> made me REACT{p}"),
        (1, "the director did <a_job{p}>"),
        (1, "<subj_sg> BE ADV{p} MADE"),
        (1, "<subj_pl> BE_PL ADV{p} MADE"),
        (1, "<extra{p}>"),
        (1, "QUANT of the PARTS were <adjp{p}>"),
    ],
    "<simple{p}>": [
        (4, "<subj_sg> BE <adjp{p}>"),
        (3, "<subj_pl> BE_PL <adjp{p}>"),
        (2, "<subj_work> BE <a_work{p}>"),
        (1, "<subj_sg> BE <a_gem{p}>"),
        (2, "i <really> LOVED{p} <thing>"),
    ],
    "<extra+>": ["there BE plenty of MASS", "i LOVED+ every minute of it"],
    "<extra->": [
        "there was too much MASS",
        "there were too many PARTS",
        "none of the PARTS were ADJ+",
        "i LOVED- every minute of it",
    ],
    "<opinion{p}>": [
        (3, "i <really> LOVED{p} <thing>"),
        (1, "i did not LOVE{q} <thing>"),
        (2, "i THINK <that> <simple{p}>"),
        (1, "i found <thing> <adjp{p}>"),
        (1, "i was <really> FELT{p} by <thing>"),
        (1, "i was not FELT{q} by <thing>"),
        (1, "my FAMILY LOVED{p} <thing>"),
    ],
    "<really>": [(4, ""), "really", "truly", "absolutely"],
    "<that>": ["", "that"],
    "<compare{p}>": [
        "<subj_sg> BE COMP{p} than <target>",
        "<subj_sg> BE more ADJ{p} than <target>",
        "<subj_sg> BE less ADJ{q} than <target>",
        "<subj_sg> BE not as ADJ{q} as <target>",
        "<subj_sg> BE as ADJ{p} as <target>",
    ],
    "<target>": [
        "the book", "the original", "the first one", "the trailer", "i expected",
        "most WORKS", "the last WORK",
    ],
    "<superlative{p}>": ["one of the SUPER{p} WORKS <ever>"],
    "<ever>": ["i have ever seen", "of the year", "of all time", "in years"],
    # --- advice ---
    "<advice{p}>": [
        (3, "<recommend{p}> ."),
        (1, "<recommend{p}> because <simple{p}> ."),
        (1, "<recommend{p}> if you like WORKS ."),
    ],
    "<recommend+>": [
        "you should watch it", "you should see it", "i would recommend it <to_whom>",
        "i recommend it <to_whom>", "it is worth watching", "go and see it",
        "i would watch it again",
    ],
    "<recommend->": [
        "you should skip it", "you should avoid it", "i would not recommend it <to_whom>",
        "it is not worth watching", "do not watch it",
        "skip this one",
    ],
    "<to_whom>": [(3, ""), "to everyone", "to anyone", "to my friends"],
    # --- phrases ---
    "<subj_sg>": [
        (4, "the PART"), (3, "<subj_work>"), (1, "the PART of the WORK"),
        (1, "the PERSON who played the <char>"),
    ],
    "<subj_work>": [(2, "it"), (2, "this WORK"), (2, "the WORK"), (1, "the WORK that i saw <watched_when>")],
    "<subj_pl>": [(3, "the PARTS"), "the PARTS in this WORK", "all the PARTS"],
    "<thing>": ["it", "the PART", "the PARTS", "this WORK", "the WORK"],
    "<adjp{p}>": [
        (4, "ADJ{p}"),
        (3, "INTENS ADJ{p}"),
        (1, "NEG ADJ{q}"),
        (1, "not INTENS_NOT ADJ{q}"),
        (1, "not ADJ{q} at all"),
        (1, "<adjp_extra{p}>"),
        (1, "<adjp0>"),
    ],
    "<adjp_extra+>": ["a joy to watch", "worth watching", "worth every minute"],
    "<adjp_extra->": ["too TOO", "painful to watch", "a waste of time"],
    "<adjp0>": [(3, "ADJ0"), (1, "INTENS ADJ0")],
    "<a_work{p}>": [
        (2, "a ADJ{p}_c WORK"), (2, "an ADJ{p}_v WORK"),
        "a INTENS_ATTR_c ADJ{p} WORK", "an INTENS_ATTR_v ADJ{p} WORK", "a ADV{p} MADE WORK",
        (0, "<a_work0>"),  # "a long western": accepted wherever a judged work is, never sampled
    ],
    "<a_work0>": ["a ADJ0_c WORK", "an ADJ0_v WORK"],
    "<a_gem{p}>": ["a GEM{p}_c", "an GEM{p}_v", "a TOTAL_c GEM{p}", "an TOTAL_v GEM{p}"],
    "<a_job{p}>": ["a ADJ{p}_c job", "an ADJ{p}_v job"],
    # === stories: a character (gender {g}) walks, meets, feels, and ends somewhere ===
    "<story>": ["<story_m>", "<story_f>"],
    "<story_{g}>": ["<intro_{g}> <event_{g}> <event_{g}> <more_events_{g}> <ending_{g}>"],
    "<more_events_{g}>": [  # 2-6 events in all, so 4-8 sentences
        (1, ""),
        (2, "<event_{g}>"),
        (2, "<event_{g}> <event_{g}>"),
        (1, "<event_{g}> <event_{g}> <event_{g}>"),
        (1, "<event_{g}> <event_{g}> <event_{g}> <event_{g}>"),
    ],
    "<intro_{g}>": [
        "once upon a time , there was <a_char_{g}> who lived in <a_place> .",
        "long ago , in <a_place> , there lived <a_char_{g}> named NAME_{g} .",
        "NAME_{g} was <a_char_{g}> who lived near <the_place> .",
        "there was once <a_char_{g}> called NAME_{g} , who loved POSS_{g} CREATURE very much .",
        "in <a_place> , there lived <a_char_{g}> named NAME_{g} .",
    ],
    "<event_{g}>": [
        (3, "<when> <action_{g}> ."),
        (1, "<when> <action_{g}> , and PRON_{g} was <feel_adjp> ."),
        (1, "<when> <action_{g}> , but <story_clause_{g}> ."),
    ],
    "<when>": [
        (8, ""), "one TIMENOUN ,", "the next TIMENOUN ,", "that TIMENOUN ,", "later that TIMENOUN ,",
        "after a while ,", "soon ,", "suddenly ,", "then ,", "at last ,",
    ],
    "<action_{g}>": [
        (2, "PRON_{g} MOTION TOWARD <the_place>"),
        (1, "PRON_{g} MOTION TOWARD <the_place> to find <a_thing>"),
        (1, "PRON_{g} MOTION TOWARD <the_place> with POSS_{g} CREATURE"),
        (1, "PRON_{g} found <a_thing> LOC <the_place>"),
        (1, "PRON_{g} SEE <a_being> LOC <the_place>"),
        (1, "PRON_{g} met <a_being> who was <feel_adjp>"),
        (1, "PRON_{g} met <a_being> who lived in <the_place>"),
        (1, "PRON_{g} felt <feel_adjp> because <story_clause_{g}>"),
        (1, "PRON_{g} gave <the_thing> to <the_being>"),
        (1, "<the_being> gave OBJ_{g} <a_thing>"),
        (1, "<the_being> told OBJ_{g} that <story_clause_{g}>"),
        (1, "PRON_{g} asked <the_being> for NEED"),
        (1, "PRON_{g} helped <the_being> CHORE <the_thing>"),
        (1, "PRON_{g} INTRANS <manner>"),
        (1, "PRON_{g} could not find POSS_{g} THING"),
        (1, "PRON_{g} was afraid of <the_being>"),
        (1, "it was <a_weather> TIMENOUN , and <the_place> was PLACE_ADJ"),
        (1, "PRON_{g} and <the_being> MOTION TOWARD <the_place> together"),
    ],
    "<ending_{g}>": [
        "in the end , PRON_{g} was <feel_adjp> .",
        "from that day on , PRON_{g} and <the_being> were best friends .",
        "PRON_{g} lived happily ever after .",
        "and so , PRON_{g} returned to <the_place> , tired but happy .",
        "it was the SUPER_STORY TIMENOUN of POSS_{g} life .",
        "PRON_{g} never forgot that TIMENOUN , and PRON_{g} was never lonely again .",
    ],
    "<story_clause_{g}>": [
        "<the_being> was <feel_adjp>",
        "POSS_{g} THING was STATE",
        "POSS_{g} CREATURE was STATE",
        "<the_place> was PLACE_ADJ",
    ],
    "<manner>": [(2, ""), (3, "MANNER"), "for a long time", "all night"],
    "<feel_adjp>": [(4, "FEEL"), (2, "INTENS FEEL"), "not FEEL", "FEEL and FEEL"],
    "<char>": ["CHAR", "CHAR_ADJ CHAR"],
    "<a_char>": ["a CHAR_ADJ_c CHAR", "an CHAR_ADJ_v CHAR", "a CHAR_c", "an CHAR_v"],
    "<a_char_{g}>": ["a CHAR_ADJ_c CHAR_{g}", "an CHAR_ADJ_v CHAR_{g}", "a CHAR_{g}_c", "an CHAR_{g}_v"],
    "<a_being>": [
        "<a_char>", "a CHAR_ADJ_c CREATURE", "an CHAR_ADJ_v CREATURE", "a CREATURE_c", "an CREATURE_v",
    ],
    "<the_being>": ["the <char>", "the CREATURE", "the CHAR_ADJ CREATURE"],
    "<a_thing>": ["a THING_ADJ_c THING", "an THING_ADJ_v THING", "a THING_c", "an THING_v"],
    "<the_thing>": ["the THING", "the THING_ADJ THING"],
    "<a_place>": ["a PLACE_ADJ_c PLACE", "an PLACE_ADJ_v PLACE", "a PLACE_c", "an PLACE_v"],
    "<the_place>": ["the PLACE", "the PLACE_ADJ PLACE"],
    "<a_weather>": ["a WEATHER_c", "an WEATHER_v"],
}

# ---------------------------------------------------------------------------
# Sentiment lexicon and the negation / intensifier rule of ``token_sentiment``.
# ---------------------------------------------------------------------------

SENTIMENT: dict[str, float] = {
    # review adjectives: positive, negative, mild
    "great": 1.0, "good": 0.6, "excellent": 1.0, "wonderful": 0.9, "brilliant": 1.0,
    "amazing": 1.0, "superb": 1.0, "beautiful": 0.8, "charming": 0.7, "clever": 0.6,
    "moving": 0.7, "funny": 0.6, "stunning": 0.9, "perfect": 1.0, "lovely": 0.8,
    "enjoyable": 0.6, "powerful": 0.8, "memorable": 0.7, "thrilling": 0.8, "impressive": 0.8,
    "original": 0.6, "hilarious": 0.8, "exciting": 0.7,
    "bad": -0.6, "awful": -1.0, "terrible": -1.0, "boring": -0.7, "dull": -0.6, "weak": -0.5,
    "poor": -0.6, "horrible": -1.0, "dreadful": -0.9, "tedious": -0.7, "silly": -0.4,
    "stupid": -0.8, "forgettable": -0.5, "predictable": -0.4, "messy": -0.5, "confusing": -0.5,
    "slow": -0.4, "painful": -0.8, "annoying": -0.7, "pointless": -0.8, "lifeless": -0.7,
    "tired": -0.4, "disappointing": -0.7, "awkward": -0.5, "mediocre": -0.5, "wooden": -0.6,
    "empty": -0.5,
    "fine": 0.2, "okay": 0.1, "decent": 0.3, "ordinary": -0.1, "too": -0.3,
    # review nouns
    "masterpiece": 1.0, "gem": 0.9, "triumph": 0.9, "treat": 0.7, "delight": 0.8, "joy": 0.8,
    "classic": 0.8, "achievement": 0.7, "plenty": 0.3, "mess": -0.8, "disaster": -1.0,
    "failure": -0.8, "bore": -0.7, "letdown": -0.7, "chore": -0.6, "flop": -0.8,
    "embarrassment": -0.8, "waste": -0.8,
    # review verbs and participles
    "loved": 0.9, "liked": 0.6, "enjoyed": 0.7, "adored": 1.0, "admired": 0.7, "love": 0.9,
    "like": 0.6, "enjoy": 0.7, "admire": 0.7, "recommend": 0.7, "worth": 0.5, "hated": -0.9,
    "disliked": -0.6, "despised": -1.0, "hate": -0.9, "dislike": -0.6, "skip": -0.6,
    "avoid": -0.7, "impressed": 0.7, "moved": 0.7, "amazed": 0.9, "charmed": 0.7,
    "delighted": 0.9, "bored": -0.7, "annoyed": -0.7, "disappointed": -0.7, "confused": -0.4,
    "unimpressed": -0.6, "laugh": 0.5, "smile": 0.5, "cheer": 0.6, "yawn": -0.5, "cringe": -0.7,
    "groan": -0.6,
    # review adverbs, superlatives, comparatives
    "beautifully": 0.8, "brilliantly": 0.9, "perfectly": 0.9, "cleverly": 0.6, "poorly": -0.7,
    "badly": -0.7, "clumsily": -0.6, "awkwardly": -0.5, "thankfully": 0.3, "luckily": 0.3,
    "fortunately": 0.3, "happily": 0.4, "sadly": -0.3, "unfortunately": -0.4, "best": 1.0,
    "finest": 1.0, "greatest": 1.0, "funniest": 0.8, "worst": -1.0, "dullest": -0.8,
    "weakest": -0.8, "silliest": -0.6, "better": 0.6, "stronger": 0.5, "funnier": 0.5,
    "worse": -0.6, "weaker": -0.5, "duller": -0.5,
    # story words
    "happy": 0.7, "proud": 0.3, "excited": 0.5, "safe": 0.4, "brave": 0.6, "kind": 0.7,
    "wise": 0.5, "gentle": 0.5, "warm": 0.3, "happiest": 0.9, "bravely": 0.5, "laughed": 0.4,
    "smiled": 0.5, "sad": -0.5, "lonely": -0.4, "afraid": -0.5, "scared": -0.5, "angry": -0.5,
    "hungry": -0.2, "wicked": -0.8, "lost": -0.3, "broken": -0.4, "missing": -0.3,
    "saddest": -0.8, "cried": -0.3,
}
POSITIVE_WORDS: frozenset[str] = frozenset(w for w, s in SENTIMENT.items() if s > 0)
NEGATIVE_WORDS: frozenset[str] = frozenset(w for w, s in SENTIMENT.items() if s < 0)

NEGATORS = frozenset({"not", "never", "hardly", "none", "less"})
"""Flip and halve the next sentiment word of the same clause ("less boring" is praise)."""

INTENSIFIERS: dict[str, float] = {
    **dict.fromkeys(
        "very really truly so extremely incredibly remarkably absolutely particularly "
        "total complete absolute utter real true".split(), 1.5),
    **dict.fromkeys("quite genuinely surprisingly".split(), 1.25),
    **dict.fromkeys("rather fairly somewhat".split(), 0.75),
}
"""Scale the sentiment word right after them (through further intensifiers / negators)."""

SCOPE_BREAKERS = frozenset({",", ".", "!", "and", "but", "although", "because", "while", "yet"})
"""Clause boundaries: a pending negation or intensifier does not cross them."""

# ---------------------------------------------------------------------------
# Prompts: short prefixes the grammar can finish both positively and negatively.
# ---------------------------------------------------------------------------

REVIEW_PROMPTS: tuple[str, ...] = (
    "the movie was", "the film was", "this film is", "this movie", "the plot was",
    "i think the plot", "i thought the acting", "the acting was", "the actors were",
    "the ending was", "the story", "the script", "the soundtrack", "the characters were",
    "the jokes were", "i really", "i did not", "i was", "i found the", "overall , the",
    "honestly , the", "in my opinion ,", "to be honest ,", "although the", "you should",
    "i would", "what a", "it was a", "the director", "my friends", "the sequel was",
    "most of the", "the actress who played", "it made me",
)
STORY_PROMPTS: tuple[str, ...] = (
    "once upon a time", "once upon a", "long ago ,", "long ago , in", "there was once",
    "there was once a", "there was once an", "in a small", "in a quiet", "in an old",
    "in a dark", "tom was a", "anna was a", "sam was an", "mia was", "leo was a",
    "lucy was", "jack was an", "emma was a", "ben was a",
)

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
