"""Tests for rlcourse.classroom.quiz with real ipywidgets (plain checks, simulated clicks, grading) and the hashed bank."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ipywidgets as widgets
import pytest

from rlcourse.classroom import quizbank
from rlcourse.classroom.quiz import (Matching, MultipleChoice, Ordering, Question, Quiz, _seeded_shuffle, answer_hash,
                                     seal, unseal)
from rlcourse.classroom.quizbank import homework_quiz, lecture_quiz


def single():
    return MultipleChoice("Which term keeps the policy near the reference model?",
                          ["the KL penalty", "the learning rate", "the batch size"], answer=0,
                          explanation="The KL term pulls it back.", hint="Think about divergence.")


def several():
    return MultipleChoice("Which are PPO ingredients?",
                          ["clipped ratio", "replay buffer", "advantages"], answer={0, 2})


STEPS = ["sample responses", "score with reward model", "compute advantages", "update policy"]
PAIRS = {"PPO": "a value model", "GRPO": "a group of samples", "DPO": "preference pairs"}


def ordering():
    return Ordering("Order the steps of one RLHF iteration.", STEPS, explanation="Sample, score, estimate, update.")


def matching():
    return Matching("Match each method to what it needs.", PAIRS)


def parts(question):
    """(controls, check button, feedback) of a question's widget."""
    box = question.widget()
    assert isinstance(box, widgets.VBox)
    _text, controls, button, feedback = box.children
    return controls, button, feedback


# --- plain answers --------------------------------------------------------------------

def test_multiple_choice_check_by_text():
    q = single()
    assert q.check("the KL penalty") is True
    assert q.check("the batch size") is False
    assert [a["correct"] for a in q.attempts] == [True, False]
    assert q.attempts[0]["answer"] == "the KL penalty"  # stored as the text
    assert not q.solved  # the latest answer is wrong


def test_multiple_choice_with_several_answers():
    q = several()
    assert q.check({"clipped ratio", "advantages"})
    assert q.check(["advantages", "clipped ratio"])
    assert not q.check({"clipped ratio"})
    assert not q.check({"clipped ratio", "replay buffer", "advantages"})
    assert q.attempts[0]["answer"] == ["advantages", "clipped ratio"]  # sorted texts


@pytest.mark.parametrize("bad, words", [
    (0, "Give an option's text"),
    (-1, "Give an option's text"),
    ("the momentum", "Unknown option"),
    ({"the KL penalty"}, "one correct option"),
    (True, "Give an option's text"),
    (0.0, "Give an option's text"),
])
def test_multiple_choice_invalid_answers(bad, words):
    q = single()
    with pytest.raises(ValueError, match=re.escape(words)):
        q.check(bad)
    assert q.attempts == []  # invalid answers are not recorded


def test_multiple_choice_set_question_rejects_single_value():
    with pytest.raises(ValueError, match="set of option texts"):
        several().check("advantages")
    with pytest.raises(ValueError, match="Give an option's text"):
        several().check({0, 2})


def test_constructor_validation():
    with pytest.raises(ValueError, match="at least two options"):
        MultipleChoice("Q?", ["only one"], answer=0)
    with pytest.raises(ValueError, match="distinct"):
        MultipleChoice("Q?", ["a", "a"], answer=0)
    with pytest.raises(ValueError, match="out of range"):
        MultipleChoice("Q?", ["a", "b"], answer=2)
    with pytest.raises(ValueError, match="empty set"):
        MultipleChoice("Q?", ["a", "b"], answer=set())
    with pytest.raises(ValueError, match="non-empty string"):
        Ordering("  ", ["a", "b"])
    with pytest.raises(ValueError, match="two str -> str pairs"):
        Matching("Q?", {"a": "b"})


def test_ordering_check_by_items_and_by_shown_indices():
    q = ordering()
    assert q.check(list(STEPS))
    assert not q.check(list(reversed(STEPS)))
    correct_indices = [q.shown.index(item) for item in STEPS]
    assert q.check(correct_indices)
    assert not q.check(list(range(len(q.shown))))  # the shown order is never correct
    assert q.attempts[2]["answer"] == STEPS  # indices are stored as item texts


@pytest.mark.parametrize("bad, words", [
    (["sample responses"], "all 4 items"),
    ([0, 1, 2, 2], "exactly once"),
    ([0, 1, 2, 4], "exactly once"),
    (["sample responses", "sample responses", "compute advantages", "update policy"], "exactly once"),
    (["sample responses", "score", "compute advantages", "update policy"], "exactly once"),
    ("sample responses", "all 4 items"),
])
def test_ordering_invalid_answers(bad, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        ordering().check(bad)


def test_ordering_shown_order_is_shuffled_deterministically():
    a, b = ordering(), ordering()
    assert a.shown == b.shown
    assert a.shown != STEPS
    assert sorted(a.shown) == sorted(STEPS)
    # Never correct, even for two items where a shuffle often leaves them in place.
    for k in range(30):
        q = Ordering(f"Two-item question {k}", ["first", "second"])
        assert q.shown == ["second", "first"]


def test_matching_check():
    q = matching()
    assert q.check(dict(PAIRS))
    wrong = {"PPO": "a group of samples", "GRPO": "a value model", "DPO": "preference pairs"}
    assert not q.check(wrong)
    assert q.choices == matching().choices
    assert sorted(q.choices) == sorted(PAIRS.values())


@pytest.mark.parametrize("bad, words", [
    ({"PPO": "a value model"}, "exactly the terms"),
    ({"PPO": "a value model", "GRPO": "a group of samples", "DPO": "preference pairs", "X": "y"},
     "exactly the terms"),
    ({"PPO": "a critic", "GRPO": "a group of samples", "DPO": "preference pairs"}, "Unknown match 'a critic'"),
    (["a value model"], "exactly the terms"),
])
def test_matching_invalid_answers(bad, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        matching().check(bad)


# --- the widget, driven like a student -------------------------------------------------

def test_radio_buttons_click_shows_feedback():
    q = single()
    radio, button, feedback = parts(q)
    assert isinstance(radio, widgets.RadioButtons) and radio.value is None
    button.click()  # nothing picked yet: a prompt, no attempt recorded
    assert "Correct" not in feedback.value and "Try again" not in feedback.value
    assert q.attempts == []
    assert list(radio.options) == q.shown  # the options appear in the seeded shuffle
    radio.value = "the learning rate"
    button.click()
    assert "Try again" in feedback.value and "Think about divergence." in feedback.value
    assert "pulls it back" not in feedback.value  # the explanation waits for the right answer
    radio.value = "the KL penalty"
    button.click()
    assert "Correct" in feedback.value and "The KL term pulls it back." in feedback.value
    assert [a["correct"] for a in q.attempts] == [False, True] and q.solved


def test_checkboxes_click_shows_feedback():
    q = several()
    boxes, button, feedback = parts(q)
    ticks = {t.description: t for t in boxes.children}
    assert all(isinstance(t, widgets.Checkbox) for t in ticks.values())
    ticks["clipped ratio"].value = True
    button.click()
    assert "Try again" in feedback.value
    ticks["advantages"].value = True
    button.click()
    assert "Correct" in feedback.value
    assert q.attempts[-1]["answer"] == ["advantages", "clipped ratio"]


def test_ordering_dropdowns_click_shows_feedback():
    q = ordering()
    positions, button, feedback = parts(q)
    dropdowns = positions.children
    assert [d.value for d in dropdowns] == q.shown  # starts in the shuffled order
    button.click()
    assert "Try again" in feedback.value
    dropdowns[0].value = dropdowns[1].value  # the same item twice: explained, not recorded
    button.click()
    assert "exactly once" in feedback.value and len(q.attempts) == 1
    for dropdown, item in zip(dropdowns, STEPS):
        dropdown.value = item
    button.click()
    assert "Correct" in feedback.value and q.solved


def test_matching_dropdowns_click_shows_feedback():
    q = matching()
    rows, button, feedback = parts(q)
    dropdowns = rows.children
    assert [d.options for d in dropdowns] == [tuple(q.choices)] * 3
    dropdowns[0].value = "a group of samples"
    dropdowns[1].value = "a value model"
    dropdowns[2].value = "preference pairs"
    button.click()
    assert "Try again" in feedback.value
    dropdowns[0].value, dropdowns[1].value = "a value model", "a group of samples"
    button.click()
    assert "Correct" in feedback.value


# --- Quiz ------------------------------------------------------------------------------

def test_quiz_score_updates_after_clicks():
    questions = [single(), ordering(), matching()]
    quiz = Quiz(questions, title="Lecture 1")
    box = quiz.widget()
    score_label = box.children[-1]
    assert "0 / 3 correct" in score_label.value
    radio, button, _ = parts(questions[0])
    radio.value = "the KL penalty"
    button.click()
    assert quiz.score() == 1 and "1 / 3 correct" in score_label.value
    questions[2].check(dict(PAIRS))  # a plain check updates the score too
    assert "2 / 3 correct" in score_label.value
    radio.value = "the batch size"
    button.click()
    assert quiz.score() == 1 and "1 / 3 correct" in score_label.value


def test_answers_are_json_and_grade_round_trips():
    questions = [single(), several(), ordering(), matching()]
    quiz = Quiz(questions)
    questions[0].check("the KL penalty")
    questions[1].check({"clipped ratio"})
    questions[2].check(list(STEPS))
    saved = json.loads(json.dumps(quiz.answers()))
    assert set(saved) == {q.id for q in questions}
    assert saved[questions[3].id] is None  # never checked
    grades = quiz.grade(saved)
    assert grades == {questions[0].id: True, questions[1].id: False,
                      questions[2].id: True, questions[3].id: False}
    assert sum(grades.values()) == quiz.score()
    # Grading on a fresh quiz records nothing.
    fresh = Quiz([single(), several(), ordering(), matching()])
    assert fresh.grade(saved) == grades
    assert all(q.attempts == [] for q in fresh.questions)


def test_grade_rejects_unknown_ids_and_invalid_answers():
    quiz = Quiz([single(), matching()])
    with pytest.raises(ValueError, match="Unknown question ids"):
        quiz.grade({"not-a-question": 0})
    with pytest.raises(ValueError, match=re.escape(f"Question {quiz.questions[0].id!r}: Give an option's text")):
        quiz.grade({quiz.questions[0].id: 0})


def test_ids_are_stable_explicit_and_unique_in_a_quiz():
    assert single().id == single().id
    assert single().id.startswith("which-term-keeps-the-policy")
    assert MultipleChoice("Q?", ["a", "b"], 0, id="hw1-q3").id == "hw1-q3"
    with pytest.raises(ValueError, match="unique"):
        Quiz([single(), single()])
    with pytest.raises(ValueError, match="non-empty list of questions"):
        Quiz([])


# --- display ----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [single, several, ordering, matching,
                                  lambda: Quiz([single(), ordering()], title="Check")])
def test_text_plain_repr_is_deterministic(make):
    a, b = make(), make()
    bundle_a, bundle_b = a._repr_mimebundle_(), b._repr_mimebundle_()
    assert bundle_a["text/plain"] == bundle_b["text/plain"] == repr(a)
    assert "0x" not in bundle_a["text/plain"] and " at " not in bundle_a["text/plain"]
    # The widget view is there too, so a notebook renders the controls.
    assert bundle_a["application/vnd.jupyter.widget-view+json"]["model_id"] == a.widget().model_id


def test_repr_shows_question_and_options():
    text = repr(single())
    assert text.splitlines()[0] == "MultipleChoice: Which term keeps the policy near the reference model?"
    assert text.splitlines()[1:] == [f"  ( ) {option}" for option in single().shown]  # no positions shown
    q = ordering()
    assert all(item in repr(q) for item in STEPS)


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        Question("Q?").check(0)


# --- hashed answers and the course's bank -----------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SOURCE = quizbank.load_source(ROOT / "solutions" / "quizzes.py")  # instructor material, plain answers
LECTURES, HOMEWORK = ["01", "02", "03", "04", "05", "06", "07", "08"], ["hw1", "hw2", "hw3", "hw4", "hw5", "hw6"]


def test_multiple_choice_shows_a_stable_seeded_shuffle():
    options = [f"option {k}" for k in range(6)]
    q = MultipleChoice("Which option?", options, answer=0)
    assert q.shown == MultipleChoice("Which option?", options, answer=0).shown  # same on every run
    assert q.shown != options and sorted(q.shown) == sorted(options)
    # Seeded from sha256 of the text, not hash(): a fixed expectation holds under any PYTHONHASHSEED.
    assert _seeded_shuffle(["a", "b", "c", "d"], "seed") == _seeded_shuffle(["a", "b", "c", "d"], "seed")
    script = ("from rlcourse.classroom.quiz import MultipleChoice; "
              "print(MultipleChoice('Which option?', [f'option {k}' for k in range(6)], answer=0).shown)")
    for hashseed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hashseed}).stdout
        assert out.strip() == repr(q.shown)


def test_a_question_keeps_a_hash_not_its_answer():
    q = MultipleChoice("Which term keeps the policy near the reference model?",
                       ["the KL penalty", "the learning rate"], answer=0, explanation="secret-ish")
    assert q._answer_sha256 == answer_hash("the KL penalty", q.salt)
    assert "the KL penalty" not in {str(v) for v in vars(q).values()}
    with pytest.raises(ValueError, match="only for the correct answer"):
        q.explanation("the learning rate")
    assert q.explanation("the KL penalty") == "secret-ish"


def test_seal_round_trips_only_with_the_right_answer():
    sealed = seal("because λ = 0 keeps δ_t", "δ_t", "salt")
    assert "δ_t" not in sealed and unseal(sealed, "δ_t", "salt") == "because λ = 0 keeps δ_t"
    try:
        wrong = unseal(sealed, "G_t", "salt")
    except UnicodeDecodeError:  # a wrong answer usually gives bytes that are not even UTF-8
        wrong = None
    assert wrong != "because λ = 0 keeps δ_t"


def test_the_bank_is_up_to_date_with_its_source():
    bank = ROOT / "rlcourse" / "assets" / "quizzes.json"
    assert bank.read_text(encoding="utf-8") == quizbank.render(ROOT / "solutions" / "quizzes.py"), (
        "rlcourse/assets/quizzes.json is stale: run `rlcourse build-quizzes` and commit it.")
    assert set(SOURCE) == set(LECTURES + HOMEWORK)


def _correct(entry):
    return {"choice": lambda: entry["answer"], "ordering": lambda: entry["items"],
            "matching": lambda: entry["pairs"]}[entry["kind"]]()


def _wrong(entry, question):
    """Every other answer of a choice question; one wrong answer of an ordering or matching."""
    if entry["kind"] == "choice":
        return [o for o in entry["options"] if o != entry["answer"]]
    if entry["kind"] == "ordering":
        return [question.shown]  # the shown order is never the right one
    pairs = entry["pairs"]
    rights = list(dict.fromkeys(pairs.values()))
    return [{left: rights[(rights.index(right) + 1) % len(rights)] for left, right in pairs.items()}]


@pytest.mark.parametrize("key", LECTURES + HOMEWORK)
def test_bank_accepts_the_right_answer_and_rejects_the_others(key):
    quiz = quizbank.quiz(key)
    for entry, question in zip(SOURCE[key]["questions"], quiz.questions, strict=True):
        assert question.id == entry["id"]
        assert question.check(_correct(entry)), (key, entry["id"])
        assert question.explanation(_correct(entry)) == entry.get("explanation", "")
        for wrong in _wrong(entry, question):
            assert not question.check(wrong), (key, entry["id"], wrong)
    assert quiz.grade({e["id"]: _correct(e) for e in SOURCE[key]["questions"]}) == {
        q.id: True for q in quiz.questions}


def test_no_plain_answer_in_the_package():
    bank = json.loads((ROOT / "rlcourse" / "assets" / "quizzes.json").read_text(encoding="utf-8"))
    text = json.dumps(bank, ensure_ascii=False)
    for key, spec in SOURCE.items():
        records = bank["quizzes"][key]["questions"]
        for entry, record in zip(spec["questions"], records, strict=True):
            assert "answer" not in record and "pairs" not in record and "explanation" not in record
            if entry.get("explanation"):
                assert entry["explanation"] not in text
            if entry["kind"] == "choice":
                assert record["options"] == sorted(entry["options"])  # the order says nothing
            if entry["kind"] == "ordering":
                assert record["items"] != entry["items"]
            if entry["kind"] == "matching":  # no right term stored next to its left term
                assert record["choices"] == sorted(set(entry["pairs"].values()))
    # Nor in the Python source of the package: no question text from the source appears there.
    for path in (ROOT / "rlcourse").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for spec in SOURCE.values():
            for entry in spec["questions"]:
                assert entry["question"] not in source, (path, entry["question"])


def test_the_right_answer_is_not_always_in_the_same_place():
    positions, longest = [], 0
    for key in LECTURES + HOMEWORK:
        for entry, question in zip(SOURCE[key]["questions"], quizbank.questions(key)):
            if entry["kind"] == "choice":
                positions.append(question.shown.index(entry["answer"]))
                longest += max(entry["options"], key=len) == entry["answer"]
    assert len(set(positions)) >= 3, positions  # first, second, third, … all occur
    assert max(positions.count(p) for p in set(positions)) <= len(positions) / 2, positions
    assert longest <= len(positions) / 4, f"the longest option is the answer in {longest} of {len(positions)}"


@pytest.mark.parametrize("key", LECTURES)
def test_lecture_quiz_is_what_the_notebook_shows(key):
    quiz = lecture_quiz(key)
    assert quiz.title == SOURCE[key]["title"] and len(quiz.questions) == len(SOURCE[key]["questions"])
    assert repr(quiz) == repr(lecture_quiz(key))  # stable text/plain for nbval
    with pytest.raises(ValueError, match="unknown quiz"):
        lecture_quiz("99")


def test_homework_quiz_matches_the_grader_spec():
    from rlcourse.grading import spec

    for hw in HOMEWORK:
        assert [q.id for q in homework_quiz(hw).questions] == [q.id for q in spec.QUIZZES[hw]]
        assert spec._quiz_points(hw, {e["id"]: _correct(e) for e in SOURCE[hw]["questions"]})[:2] == (
            len(SOURCE[hw]["questions"]),) * 2
