"""Tests for rlcourse.quiz with real ipywidgets: plain checks, simulated clicks, grading."""

import json
import re

import ipywidgets as widgets
import pytest

from rlcourse.quiz import Matching, MultipleChoice, Ordering, Question, Quiz


def single():
    return MultipleChoice("Which term keeps the policy near the reference model?",
                          ["the KL penalty", "the learning rate", "the batch size"], answer=0,
                          explanation="The KL term pulls it back.", hint="Think about divergence.")


def several():
    return MultipleChoice("Which are PPO ingredients?",
                          ["clipped ratio", "replay buffer", "advantages"], answer={0, 2})


def ordering():
    return Ordering("Order the steps of one RLHF iteration.",
                    ["sample responses", "score with reward model", "compute advantages", "update policy"],
                    explanation="Sample, score, estimate, update.")


def matching():
    return Matching("Match each method to what it needs.",
                    {"PPO": "a value model", "GRPO": "a group of samples", "DPO": "preference pairs"})


def parts(question):
    """(controls, check button, feedback) of a question's widget."""
    box = question.widget()
    assert isinstance(box, widgets.VBox)
    _text, controls, button, feedback = box.children
    return controls, button, feedback


# --- plain answers --------------------------------------------------------------------

def test_multiple_choice_check_by_index_and_text():
    q = single()
    assert q.check(0) is True
    assert q.check("the KL penalty") is True
    assert q.check(1) is False
    assert q.check("the batch size") is False
    assert [a["correct"] for a in q.attempts] == [True, True, False, False]
    assert q.attempts[1]["answer"] == 0  # stored as the index, whatever form was given
    assert not q.solved  # the latest answer is wrong


def test_multiple_choice_with_several_answers():
    q = several()
    assert q.check({0, 2})
    assert q.check(["advantages", "clipped ratio"])
    assert not q.check({0})
    assert not q.check({0, 1, 2})


@pytest.mark.parametrize("bad, words", [
    (3, "out of range"),
    (-1, "out of range"),
    ("the momentum", "Unknown option"),
    ({0}, "one correct option"),
    (True, "index (int) or an option text"),
    (0.0, "index (int) or an option text"),
])
def test_multiple_choice_invalid_answers(bad, words):
    q = single()
    with pytest.raises(ValueError, match=re.escape(words)):
        q.check(bad)
    assert q.attempts == []  # invalid answers are not recorded


def test_multiple_choice_set_question_rejects_single_value():
    with pytest.raises(ValueError, match="set of indices"):
        several().check(0)
    with pytest.raises(ValueError, match="out of range"):
        several().check({0, 5})


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
    assert q.check(list(q.items))
    assert not q.check(list(reversed(q.items)))
    correct_indices = [q.shown.index(item) for item in q.items]
    assert q.check(correct_indices)
    assert not q.check(list(range(len(q.shown))))  # the shown order is never correct
    assert q.attempts[2]["answer"] == q.items  # indices are stored as item texts


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
    assert a.shown != a.items
    assert sorted(a.shown) == sorted(a.items)
    # Never correct, even for two items where a shuffle often leaves them in place.
    for k in range(30):
        q = Ordering(f"Two-item question {k}", ["first", "second"])
        assert q.shown == ["second", "first"]


def test_matching_check():
    q = matching()
    assert q.check(dict(q.pairs))
    wrong = {"PPO": "a group of samples", "GRPO": "a value model", "DPO": "preference pairs"}
    assert not q.check(wrong)
    assert q.choices == matching().choices
    assert sorted(q.choices) == sorted(q.pairs.values())


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
    radio.value = 1
    button.click()
    assert "Try again" in feedback.value and "Think about divergence." in feedback.value
    radio.value = 0
    button.click()
    assert "Correct" in feedback.value and "The KL term pulls it back." in feedback.value
    assert [a["correct"] for a in q.attempts] == [False, True] and q.solved


def test_checkboxes_click_shows_feedback():
    q = several()
    boxes, button, feedback = parts(q)
    ticks = boxes.children
    assert all(isinstance(t, widgets.Checkbox) for t in ticks)
    ticks[0].value = True
    button.click()
    assert "Try again" in feedback.value
    ticks[2].value = True
    button.click()
    assert "Correct" in feedback.value
    assert q.attempts[-1]["answer"] == [0, 2]


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
    for dropdown, item in zip(dropdowns, q.items):
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
    radio.value = 0
    button.click()
    assert quiz.score() == 1 and "1 / 3 correct" in score_label.value
    questions[2].check(dict(questions[2].pairs))  # a plain check updates the score too
    assert "2 / 3 correct" in score_label.value
    radio.value = 2
    button.click()
    assert quiz.score() == 1 and "1 / 3 correct" in score_label.value


def test_answers_are_json_and_grade_round_trips():
    questions = [single(), several(), ordering(), matching()]
    quiz = Quiz(questions)
    questions[0].check("the KL penalty")
    questions[1].check({0})
    questions[2].check(list(questions[2].items))
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
    with pytest.raises(ValueError, match=re.escape(f"Question {quiz.questions[0].id!r}: Option index 7")):
        quiz.grade({quiz.questions[0].id: 7})


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
    assert "0. the KL penalty" in text and "2. the batch size" in text
    q = ordering()
    assert all(item in repr(q) for item in q.items)


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        Question("Q?").check(0)
