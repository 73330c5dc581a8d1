"""Quiz questions that end each lecture notebook and appear in homework.

Three kinds of question share one base class, :class:`Question`:

- :class:`MultipleChoice`: one correct option (radio buttons) or several (checkboxes).
- :class:`Ordering`: put items in the right order (one dropdown per position).
- :class:`Matching`: match each left term to a right term (one dropdown per term).

Each question works two ways. In a notebook, a cell whose last line is a question renders
its widget; the student answers and clicks "Check". In a script or a grader, ``check``
takes a plain answer::

    >>> q = MultipleChoice("Which term keeps the policy near the reference?",
    ...                    ["the KL penalty", "the learning rate"], answer=0)
    >>> q.check(0), q.check("the learning rate")
    (True, False)

:class:`Quiz` groups questions, keeps a score and turns the current answers into a
JSON-serializable dict that :meth:`Quiz.grade` checks again later.

Answers in JSON form (what ``attempts``, ``Quiz.answers`` and ``Quiz.grade`` use):
MultipleChoice -> option index (int), or a sorted list of indices when several are correct;
Ordering -> list of item texts in the student's order; Matching -> dict left -> right.
"""

from __future__ import annotations

import hashlib
import html
import random
import re
from typing import Any, Callable

import ipywidgets as widgets

__all__ = ["Question", "MultipleChoice", "Ordering", "Matching", "Quiz"]

_INCOMPLETE = object()  # returned by _widget_answer when the student has not answered yet


def _question_id(text: str) -> str:
    """A stable id from the question text: a readable slug plus a short hash.

    Example: ``"What does PPO clip?"`` -> ``"what-does-ppo-clip-1b8d2e"``.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]
    return f"{slug}-{digest}" if slug else f"q-{digest}"


def _seeded_shuffle(values: list[str], seed_text: str) -> list[str]:
    """Shuffle ``values`` with a seed taken from ``seed_text`` (same text, same order).

    Uses a hash of the text, not ``hash()``, which changes with PYTHONHASHSEED.
    """
    seed = int(hashlib.sha256(seed_text.encode("utf-8")).hexdigest(), 16)
    shuffled = list(values)
    random.Random(seed).shuffle(shuffled)
    return shuffled


def _check_texts(values: list[str], what: str) -> list[str]:
    """Validate a list of at least two distinct strings (options, items)."""
    values = list(values)
    if len(values) < 2 or not all(isinstance(v, str) for v in values):
        raise ValueError(f"A question needs at least two {what} given as strings, got {values!r}.")
    if len(set(values)) != len(values):
        raise ValueError(f"The {what} of a question must be distinct, got {values!r}.")
    return values


class Question:
    """Shared logic: validate an answer, record the attempt, show feedback.

    Subclasses implement four small hooks: ``_normalize`` (plain answer -> JSON form,
    raising ValueError), ``_is_correct`` (JSON form -> bool), ``_controls`` (the input
    widgets) and ``_widget_answer`` (read the controls back as a plain answer).

    Attributes:
        text: the question as shown (``$...$`` renders as math in the notebook).
        id: stable id, from ``id=`` or derived from the text; keys ``Quiz.answers()``.
        attempts: one ``{"answer": <JSON form>, "correct": bool}`` per check, oldest first.
    """

    def __init__(self, question: str, explanation: str = "", hint: str = "", id: str | None = None):
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"The question text must be a non-empty string, got {question!r}.")
        self.text = question
        self.explanation = explanation
        self.hint = hint
        self.id = id if id is not None else _question_id(question)
        self.attempts: list[dict[str, Any]] = []
        self._listeners: list[Callable[[Question], None]] = []  # e.g. a Quiz's score
        self._widget: widgets.VBox | None = None

    # --- plain answers -------------------------------------------------------------
    def check(self, answer: Any) -> bool:
        """Check a plain answer, record it in ``attempts`` and return whether it is right.

        Raises ValueError (one sentence saying what was expected) for an invalid answer.
        """
        normalized = self._normalize(answer)
        correct = self._is_correct(normalized)
        self.attempts.append({"answer": normalized, "correct": correct})
        for listener in self._listeners:
            listener(self)
        return correct

    @property
    def last_answer(self) -> Any:
        """The latest checked answer in JSON form, or None before the first check."""
        return self.attempts[-1]["answer"] if self.attempts else None

    @property
    def solved(self) -> bool:
        """True when the latest checked answer is correct."""
        return bool(self.attempts) and self.attempts[-1]["correct"]

    def _grade(self, answer: Any) -> bool:
        """Like ``check`` but records nothing (for graders)."""
        return self._is_correct(self._normalize(answer))

    # --- widget --------------------------------------------------------------------
    def widget(self) -> widgets.VBox:
        """The question as a VBox: text, controls, a Check button and feedback (built once)."""
        if self._widget is None:
            self._controls_box = self._controls()
            self._check_button = widgets.Button(description="Check", button_style="primary")
            self._feedback = widgets.HTMLMath(value="")
            self._check_button.on_click(self._on_check_click)
            self._widget = widgets.VBox(
                [widgets.HTMLMath(f"<b>{html.escape(self.text)}</b>"), self._controls_box,
                 self._check_button, self._feedback]
            )
        return self._widget

    def _on_check_click(self, _button: widgets.Button) -> None:
        answer = self._widget_answer()
        if answer is _INCOMPLETE:
            self._feedback.value = "Answer every part first, then click Check."
            return
        try:
            correct = self.check(answer)
        except ValueError as err:  # e.g. the same item used twice in an ordering
            self._feedback.value = html.escape(str(err))
            return
        message = f"✅ Correct! {self.explanation}" if correct else f"❌ Try again. {self.hint}"
        self._feedback.value = html.escape(message.strip())

    # --- display -------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """Render the widget in a notebook; text/plain is ``repr(self)`` (deterministic)."""
        data = self.widget()._repr_mimebundle_(**kwargs) or {}
        return {**data, "text/plain": repr(self)}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}: {self.text}"]
        lines += [f"  {line}" for line in self._repr_lines()]
        return "\n".join(lines)

    # --- hooks for subclasses ------------------------------------------------------
    def _normalize(self, answer: Any) -> Any:
        raise NotImplementedError

    def _is_correct(self, normalized: Any) -> bool:
        raise NotImplementedError

    def _controls(self) -> widgets.Widget:
        raise NotImplementedError

    def _widget_answer(self) -> Any:
        raise NotImplementedError

    def _repr_lines(self) -> list[str]:
        raise NotImplementedError


class MultipleChoice(Question):
    """Pick the correct option, or every correct option when ``answer`` is a set.

    Plain answers: an option index (``0``) or option text (``"the KL penalty"``); for a
    set question, a set/list/tuple of indices or texts (``{0, 2}``, ``["a", "c"]``).
    """

    def __init__(self, question: str, options: list[str], answer: int | set[int],
                 explanation: str = "", hint: str = "", id: str | None = None):
        super().__init__(question, explanation, hint, id)
        self.options = _check_texts(options, "options")
        self.multiple = isinstance(answer, (set, frozenset))
        self.correct = self._normalize(answer)  # JSON form: int, or sorted list of ints
        if self.multiple and not self.correct:
            raise ValueError("A set answer needs at least one correct option index, got an empty set.")

    def _index(self, choice: Any) -> int:
        """One option given as an index or as its text -> its index."""
        if isinstance(choice, str):
            if choice not in self.options:
                raise ValueError(f"Unknown option {choice!r}; expected one of {self.options!r}.")
            return self.options.index(choice)
        if isinstance(choice, int) and not isinstance(choice, bool):
            if not 0 <= choice < len(self.options):
                raise ValueError(
                    f"Option index {choice} is out of range; expected 0 to {len(self.options) - 1}.")
            return choice
        raise ValueError(f"An option must be an index (int) or an option text (str), got {choice!r}.")

    def _normalize(self, answer: Any) -> int | list[int]:
        if not self.multiple:
            if isinstance(answer, (set, frozenset, list, tuple)):
                raise ValueError(f"This question has one correct option; give one index or text, got {answer!r}.")
            return self._index(answer)
        if not isinstance(answer, (set, frozenset, list, tuple)):
            raise ValueError(
                f"This question may have several correct options; give a set of indices or texts, got {answer!r}.")
        return sorted({self._index(choice) for choice in answer})

    def _is_correct(self, normalized: int | list[int]) -> bool:
        return normalized == self.correct

    def _controls(self) -> widgets.Widget:
        if not self.multiple:  # value is the option index; None until the student picks one
            self._choice = widgets.RadioButtons(
                options=[(text, i) for i, text in enumerate(self.options)], value=None,
                layout=widgets.Layout(width="max-content"))
            return self._choice
        self._boxes = [widgets.Checkbox(value=False, description=text, indent=False)
                       for text in self.options]
        return widgets.VBox(self._boxes)

    def _widget_answer(self) -> Any:
        if not self.multiple:
            return _INCOMPLETE if self._choice.value is None else self._choice.value
        ticked = {i for i, box in enumerate(self._boxes) if box.value}
        return ticked if ticked else _INCOMPLETE

    def _repr_lines(self) -> list[str]:
        mark = "[ ]" if self.multiple else "( )"
        return [f"{mark} {i}. {text}" for i, text in enumerate(self.options)]


class Ordering(Question):
    """Put the items in order. ``items`` is given in the CORRECT order.

    The student sees them in ``shown``: a shuffle seeded from the question text, so the
    same on every run and never the correct order.

    Plain answers: a list of item texts in the chosen order, or a list of indices into
    ``shown`` (``[2, 0, 1]`` means "shown[2] first, then shown[0], then shown[1]").
    """

    def __init__(self, question: str, items: list[str], explanation: str = "", hint: str = "",
                 id: str | None = None):
        super().__init__(question, explanation, hint, id)
        self.items = _check_texts(items, "items")
        shown = _seeded_shuffle(self.items, question)
        if shown == self.items:  # rotating by one keeps it deterministic and surely wrong
            shown = shown[1:] + shown[:1]
        self.shown = shown

    def _normalize(self, answer: Any) -> list[str]:
        if not isinstance(answer, (list, tuple)) or len(answer) != len(self.items):
            raise ValueError(
                f"Give a list of all {len(self.items)} items (texts or indices into .shown), got {answer!r}.")
        if all(isinstance(a, int) and not isinstance(a, bool) for a in answer):
            if sorted(answer) != list(range(len(self.shown))):
                raise ValueError(
                    f"Indices must use each of 0 to {len(self.shown) - 1} exactly once, got {list(answer)!r}.")
            return [self.shown[i] for i in answer]
        if not all(isinstance(a, str) for a in answer) or sorted(answer) != sorted(self.items):
            raise ValueError(f"Use each of the items {self.shown!r} exactly once, got {list(answer)!r}.")
        return list(answer)

    def _is_correct(self, normalized: list[str]) -> bool:
        return normalized == self.items

    def _controls(self) -> widgets.Widget:
        # One dropdown per position, starting from the shown (shuffled) order.
        self._positions = [widgets.Dropdown(options=self.shown, value=item, description=f"{k + 1}.")
                           for k, item in enumerate(self.shown)]
        return widgets.VBox(self._positions)

    def _widget_answer(self) -> Any:
        chosen = [dropdown.value for dropdown in self._positions]
        return _INCOMPLETE if None in chosen else chosen

    def _repr_lines(self) -> list[str]:
        return [f"{k + 1}. {item}" for k, item in enumerate(self.shown)]


class Matching(Question):
    """Match each left term to a right term (several left terms may share a right term).

    ``choices`` holds the distinct right terms in a shuffle seeded from the question text.
    Plain answers: a dict ``{left: right}`` with every left term once.
    """

    def __init__(self, question: str, pairs: dict[str, str], explanation: str = "", hint: str = "",
                 id: str | None = None):
        super().__init__(question, explanation, hint, id)
        if not isinstance(pairs, dict) or len(pairs) < 2 or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
            raise ValueError(f"A matching question needs a dict of at least two str -> str pairs, got {pairs!r}.")
        self.pairs = dict(pairs)
        self.choices = _seeded_shuffle(list(dict.fromkeys(pairs.values())), question)

    def _normalize(self, answer: Any) -> dict[str, str]:
        if not isinstance(answer, dict) or set(answer) != set(self.pairs):
            raise ValueError(
                f"Give a dict with exactly the terms {list(self.pairs)!r} as keys, got {answer!r}.")
        unknown = [right for right in answer.values() if right not in self.choices]
        if unknown:
            raise ValueError(f"Unknown match {unknown[0]!r}; expected one of {self.choices!r}.")
        return {left: answer[left] for left in self.pairs}  # keep the question's key order

    def _is_correct(self, normalized: dict[str, str]) -> bool:
        return normalized == self.pairs

    def _controls(self) -> widgets.Widget:
        self._dropdowns = {left: widgets.Dropdown(options=self.choices, value=None, description=left,
                                                  style={"description_width": "initial"})
                           for left in self.pairs}
        return widgets.VBox(list(self._dropdowns.values()))

    def _widget_answer(self) -> Any:
        chosen = {left: dropdown.value for left, dropdown in self._dropdowns.items()}
        return _INCOMPLETE if None in chosen.values() else chosen

    def _repr_lines(self) -> list[str]:
        return [f"{left} -> ?" for left in self.pairs] + [f"choices: {', '.join(self.choices)}"]


class Quiz:
    """A group of questions with a running score.

    Example::

        quiz = Quiz([q1, q2], title="Lecture 3 check")
        quiz                         # renders every question and "0 / 2 correct"
        saved = quiz.answers()       # {"what-does-ppo-clip-1b8d2e": 1, ...}; None if unanswered
        quiz.grade(saved)            # {"what-does-ppo-clip-1b8d2e": True, ...}
    """

    def __init__(self, questions: list[Question], title: str = ""):
        self.questions = list(questions)
        if not self.questions or not all(isinstance(q, Question) for q in self.questions):
            raise ValueError("A Quiz needs a non-empty list of questions (MultipleChoice, Ordering, Matching).")
        ids = [q.id for q in self.questions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"Question ids must be unique; {duplicates!r} repeat, so pass id= to tell them apart.")
        self.title = title
        self._score_label: widgets.HTML | None = None
        self._widget: widgets.VBox | None = None
        for question in self.questions:
            question._listeners.append(lambda _q: self._refresh_score())

    def score(self) -> int:
        """Number of questions whose latest checked answer is correct."""
        return sum(q.solved for q in self.questions)

    def answers(self) -> dict[str, Any]:
        """Latest checked answer per question id, in JSON form (None when not yet checked)."""
        return {q.id: q.last_answer for q in self.questions}

    def grade(self, answers: dict[str, Any]) -> dict[str, bool]:
        """Check plain answers keyed by question id without recording them.

        A missing or None answer counts as wrong; an unknown id or an invalid answer raises
        ValueError.
        """
        unknown = sorted(set(answers) - {q.id for q in self.questions})
        if unknown:
            raise ValueError(f"Unknown question ids {unknown!r}; expected ids from this quiz's answers().")
        grades = {}
        for q in self.questions:
            answer = answers.get(q.id)
            try:
                grades[q.id] = answer is not None and q._grade(answer)
            except ValueError as err:
                raise ValueError(f"Question {q.id!r}: {err}") from None
        return grades

    def _score_text(self) -> str:
        return f"<b>{self.score()} / {len(self.questions)} correct</b>"

    def _refresh_score(self) -> None:
        if self._score_label is not None:
            self._score_label.value = self._score_text()

    def widget(self) -> widgets.VBox:
        """Title, every question's widget, then the score (built once)."""
        if self._widget is None:
            self._score_label = widgets.HTML(self._score_text())
            header = [widgets.HTML(f"<h3>{html.escape(self.title)}</h3>")] if self.title else []
            self._widget = widgets.VBox(header + [q.widget() for q in self.questions] + [self._score_label])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = self.widget()._repr_mimebundle_(**kwargs) or {}
        return {**data, "text/plain": repr(self)}

    def __repr__(self) -> str:
        head = f"Quiz: {self.title}" if self.title else "Quiz"
        return "\n".join([f"{head} ({len(self.questions)} questions)"] + [repr(q) for q in self.questions])
