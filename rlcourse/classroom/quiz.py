"""Quiz questions that end each lecture notebook and appear in homework.

Three kinds of question share one base class, :class:`Question`:

- :class:`MultipleChoice`: one correct option (radio buttons) or several (checkboxes).
- :class:`Ordering`: put items in the right order (one dropdown per position).
- :class:`Matching`: match each left term to a right term (one dropdown per term).

The course's own questions live in a bank (:mod:`rlcourse.classroom.quizbank`): a notebook cell shows
only ``lecture_quiz("01")``, and the bank stores each answer as a salted SHA-256 hash, so
neither the notebook nor the package source shows it. A question built by hand takes a
plain answer, which is hashed at once and not kept::

    >>> q = MultipleChoice("Which term keeps the policy near the reference?",
    ...                    ["the KL penalty", "the learning rate"], answer=0)
    >>> q.check("the KL penalty"), q.check("the learning rate")
    (True, False)

Each question works two ways. In a notebook, a cell whose last value is a question renders
its widget; the student answers and clicks "Check". In a script or a grader, ``check`` takes
a plain answer. Options, items and choices are shown in a shuffle seeded from the question
(the same on every machine), so a position says nothing about the answer.

Answers in JSON form (what ``attempts``, ``Quiz.answers`` and ``Quiz.grade`` use) are texts,
never positions, because what a student sees is shuffled:

- MultipleChoice: the option's text; a sorted list of texts when several are correct;
- Ordering: the list of item texts in the student's order;
- Matching: a dict ``{left term: right term}``.

:class:`Quiz` groups questions, keeps a score and turns the current answers into a
JSON-serializable dict that :meth:`Quiz.grade` checks again later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import random
import re
from typing import Any, Callable

import ipywidgets as widgets

__all__ = ["Question", "MultipleChoice", "Ordering", "Matching", "Quiz", "answer_hash", "seal", "unseal"]

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


# --- hashed answers ------------------------------------------------------------------------
# The salt is public (it is stored next to the hash): it only stops one table of hashes from
# serving every question. Anyone may still try every option; the aim is that *reading* the
# notebook or the package does not show the answer.

def _canonical(answer: Any) -> bytes:
    """One byte string per JSON-form answer (dict keys sorted, no whitespace choices)."""
    return json.dumps(answer, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def default_salt(question: str) -> str:
    """The salt of a question: 16 hex digits from its text (deterministic, so builds are reproducible)."""
    return hashlib.sha256(f"rlcourse-quiz\n{question}".encode("utf-8")).hexdigest()[:16]


def answer_hash(answer: Any, salt: str) -> str:
    """SHA-256 hex digest of ``salt`` and the canonical JSON form of ``answer``."""
    return hashlib.sha256(salt.encode("utf-8") + b"\n" + _canonical(answer)).hexdigest()


def _keystream(key: bytes, n: int) -> bytes:
    blocks = (hashlib.sha256(key + i.to_bytes(4, "big")).digest() for i in range((n + 31) // 32))
    return b"".join(blocks)[:n]


def seal(text: str, answer: Any, salt: str) -> str:
    """``text`` encrypted with a key made from the correct answer (base64): readable only once solved.

    An explanation usually restates the answer, so the bank stores it sealed; ``unseal`` with
    the correct answer gives it back. (A SHA-256 keystream: obscurity for readers, not secrecy.)
    """
    data = text.encode("utf-8")
    key = hashlib.sha256(b"explanation\n" + salt.encode("utf-8") + b"\n" + _canonical(answer)).digest()
    return base64.b64encode(bytes(a ^ b for a, b in zip(data, _keystream(key, len(data))))).decode("ascii")


def unseal(sealed: str, answer: Any, salt: str) -> str:
    """The inverse of :func:`seal` (given the same, correct, answer)."""
    data = base64.b64decode(sealed)
    key = hashlib.sha256(b"explanation\n" + salt.encode("utf-8") + b"\n" + _canonical(answer)).digest()
    return bytes(a ^ b for a, b in zip(data, _keystream(key, len(data)))).decode("utf-8")


class Question:
    """Shared logic: validate an answer, compare its hash, record the attempt, show feedback.

    Subclasses implement four small hooks: ``_normalize`` (plain answer -> JSON form,
    raising ValueError), ``_controls`` (the input widgets), ``_widget_answer`` (read the
    controls back as a plain answer) and ``_repr_lines``. An answer is right when its hash
    equals the stored one (:func:`answer_hash`); the plain answer is never kept.

    Attributes:
        text: the question as shown (``$...$`` renders as math in the notebook).
        id: stable id, from ``id=`` or derived from the text; keys ``Quiz.answers()``.
        salt: the public salt of the answer hash (from ``salt=``, else from the text).
        attempts: one ``{"answer": <JSON form>, "correct": bool}`` per check, oldest first.
    """

    def __init__(self, question: str, explanation: str = "", hint: str = "", id: str | None = None,
                 salt: str | None = None):
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"The question text must be a non-empty string, got {question!r}.")
        self.text = question
        self.hint = hint
        self.id = id if id is not None else _question_id(question)
        self.salt = salt if salt is not None else default_salt(question)
        self._explanation = explanation  # plain (a hand-built question) or sealed (from the bank)
        self._sealed = False
        self._answer_sha256 = ""
        self.attempts: list[dict[str, Any]] = []
        self._listeners: list[Callable[[Question], None]] = []  # e.g. a Quiz's score
        self._widget: widgets.VBox | None = None

    def _set_answer(self, plain: Any, answer_sha256: str | None, sealed_explanation: str | None) -> None:
        """Store the hash of the correct answer: given (the bank) or made from a plain answer."""
        if (plain is None) == (answer_sha256 is None):
            raise ValueError("Give a question either its plain answer or answer_sha256= (from the bank), not both.")
        if answer_sha256 is not None:
            if not re.fullmatch(r"[0-9a-f]{64}", answer_sha256):
                raise ValueError(f"answer_sha256 must be 64 lowercase hex digits, got {answer_sha256!r}.")
            self._answer_sha256 = answer_sha256
            if sealed_explanation is not None:
                self._explanation, self._sealed = sealed_explanation, True
        else:
            self._answer_sha256 = answer_hash(self._normalize(plain), self.salt)

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

    def _is_correct(self, normalized: Any) -> bool:
        return hmac.compare_digest(answer_hash(normalized, self.salt), self._answer_sha256)

    def explanation(self, correct_answer: Any) -> str:
        """The explanation shown after ``correct_answer`` (a plain answer) was accepted."""
        normalized = self._normalize(correct_answer)
        if not self._is_correct(normalized):
            raise ValueError("The explanation is shown only for the correct answer.")
        return unseal(self._explanation, normalized, self.salt) if self._sealed else self._explanation

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
        message = f"✅ Correct! {self.explanation(answer)}" if correct else f"❌ Try again. {self.hint}"
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

    def _controls(self) -> widgets.Widget:
        raise NotImplementedError

    def _widget_answer(self) -> Any:
        raise NotImplementedError

    def _repr_lines(self) -> list[str]:
        raise NotImplementedError


class MultipleChoice(Question):
    """Pick the correct option, or every correct option of a ``multiple`` question.

    ``options`` is the canonical order (the bank stores it sorted); the student sees
    ``shown``, a shuffle seeded from the question's id and text.

    Build by hand with ``answer=``: an index into ``options`` or an option text, or a set of
    them (several correct). The bank builds with ``answer_sha256=`` and ``multiple=`` instead.
    Plain answers to ``check``: the option text (``"the KL penalty"``), or for a ``multiple``
    question a set/list/tuple of texts. Positions are refused: the student sees a shuffle.
    """

    def __init__(self, question: str, options: list[str], answer: int | str | set | None = None,
                 explanation: str = "", hint: str = "", id: str | None = None, *,
                 multiple: bool | None = None, answer_sha256: str | None = None,
                 sealed_explanation: str | None = None, salt: str | None = None):
        super().__init__(question, explanation, hint, id, salt)
        self.options = _check_texts(options, "options")
        self.shown = _seeded_shuffle(self.options, f"{self.id}\n{question}")
        if answer is not None:
            self.multiple = isinstance(answer, (set, frozenset))
            if self.multiple and not answer:
                raise ValueError("A set answer needs at least one correct option, got an empty set.")
            answer = {self._text_of(a) for a in answer} if self.multiple else self._text_of(answer)
        elif multiple is None:
            raise ValueError("A question built from answer_sha256= needs multiple=True or False.")
        else:
            self.multiple = bool(multiple)
        self._set_answer(answer, answer_sha256, sealed_explanation)

    def _text_of(self, choice: Any) -> str:
        """The author's answer (an index into ``options`` or a text) -> its option text."""
        if isinstance(choice, int) and not isinstance(choice, bool):
            if not 0 <= choice < len(self.options):
                raise ValueError(
                    f"Option index {choice} is out of range; expected 0 to {len(self.options) - 1}.")
            return self.options[choice]
        return choice

    def _option(self, choice: Any) -> str:
        if isinstance(choice, str):
            if choice not in self.options:
                raise ValueError(f"Unknown option {choice!r}; expected one of {self.shown!r}.")
            return choice
        raise ValueError(f"Give an option's text (the options are shown shuffled, so a position is "
                         f"ambiguous), got {choice!r}.")

    def _normalize(self, answer: Any) -> str | list[str]:
        if not self.multiple:
            if isinstance(answer, (set, frozenset, list, tuple)):
                raise ValueError(f"This question has one correct option; give its text, got {answer!r}.")
            return self._option(answer)
        if not isinstance(answer, (set, frozenset, list, tuple)):
            raise ValueError(
                f"This question may have several correct options; give a set of option texts, got {answer!r}.")
        return sorted({self._option(choice) for choice in answer})

    def _controls(self) -> widgets.Widget:
        if not self.multiple:  # value is the option text; None until the student picks one
            self._choice = widgets.RadioButtons(options=self.shown, value=None,
                                                layout=widgets.Layout(width="max-content"))
            return self._choice
        self._boxes = [widgets.Checkbox(value=False, description=text, indent=False) for text in self.shown]
        return widgets.VBox(self._boxes)

    def _widget_answer(self) -> Any:
        if not self.multiple:
            return _INCOMPLETE if self._choice.value is None else self._choice.value
        ticked = {box.description for box in self._boxes if box.value}
        return ticked if ticked else _INCOMPLETE

    def _repr_lines(self) -> list[str]:
        mark = "[ ]" if self.multiple else "( )"
        return [f"{mark} {text}" for text in self.shown]


class Ordering(Question):
    """Put the items in order.

    Built by hand, ``items`` is given in the CORRECT order and the student sees ``shown``: a
    shuffle seeded from the question text, the same on every run and never the correct order.
    Built from the bank (``answer_sha256=``), ``items`` is already that shown order.

    Plain answers: a list of item texts in the chosen order, or a list of indices into
    ``shown`` (``[2, 0, 1]`` means "shown[2] first, then shown[0], then shown[1]").
    """

    def __init__(self, question: str, items: list[str], explanation: str = "", hint: str = "",
                 id: str | None = None, *, answer_sha256: str | None = None,
                 sealed_explanation: str | None = None, salt: str | None = None):
        super().__init__(question, explanation, hint, id, salt)
        items = _check_texts(items, "items")
        self.shown = items if answer_sha256 is not None else self.shuffled(question, items)
        self._set_answer(None if answer_sha256 is not None else items, answer_sha256, sealed_explanation)

    @staticmethod
    def shuffled(question: str, items: list[str]) -> list[str]:
        """The order a student sees for ``items`` given in the correct order: seeded, never correct."""
        shown = _seeded_shuffle(items, question)
        if shown == list(items):  # rotating by one keeps it deterministic and surely wrong
            shown = shown[1:] + shown[:1]
        return shown

    def _normalize(self, answer: Any) -> list[str]:
        if not isinstance(answer, (list, tuple)) or len(answer) != len(self.shown):
            raise ValueError(
                f"Give a list of all {len(self.shown)} items (texts or indices into .shown), got {answer!r}.")
        if all(isinstance(a, int) and not isinstance(a, bool) for a in answer):
            if sorted(answer) != list(range(len(self.shown))):
                raise ValueError(
                    f"Indices must use each of 0 to {len(self.shown) - 1} exactly once, got {list(answer)!r}.")
            return [self.shown[i] for i in answer]
        if not all(isinstance(a, str) for a in answer) or sorted(answer) != sorted(self.shown):
            raise ValueError(f"Use each of the items {self.shown!r} exactly once, got {list(answer)!r}.")
        return list(answer)

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

    Built by hand from ``pairs`` ``{left: right}``; built from the bank from ``left`` and
    ``choices`` with ``answer_sha256=``. The student sees ``choices`` (the distinct right
    terms) in a shuffle seeded from the question text.
    Plain answers: a dict ``{left: right}`` with every left term once.
    """

    def __init__(self, question: str, pairs: dict[str, str] | None = None, explanation: str = "",
                 hint: str = "", id: str | None = None, *, left: list[str] | None = None,
                 choices: list[str] | None = None, answer_sha256: str | None = None,
                 sealed_explanation: str | None = None, salt: str | None = None):
        super().__init__(question, explanation, hint, id, salt)
        if pairs is not None:
            if not isinstance(pairs, dict) or len(pairs) < 2 or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
                raise ValueError(f"A matching question needs a dict of at least two str -> str pairs, got {pairs!r}.")
            left, choices = list(pairs), list(dict.fromkeys(pairs.values()))
        elif left is None or choices is None:
            raise ValueError("A matching question needs pairs= (by hand) or left= and choices= (from the bank).")
        self.left = _check_texts(left, "left terms")
        self.choices = _seeded_shuffle(_check_texts(choices, "choices"), question)
        self._set_answer(pairs, answer_sha256, sealed_explanation)

    def _normalize(self, answer: Any) -> dict[str, str]:
        if not isinstance(answer, dict) or set(answer) != set(self.left):
            raise ValueError(
                f"Give a dict with exactly the terms {self.left!r} as keys, got {answer!r}.")
        unknown = [right for right in answer.values() if right not in self.choices]
        if unknown:
            raise ValueError(f"Unknown match {unknown[0]!r}; expected one of {self.choices!r}.")
        return {left: answer[left] for left in self.left}  # keep the question's key order

    def _controls(self) -> widgets.Widget:
        self._dropdowns = {left: widgets.Dropdown(options=self.choices, value=None, description=left,
                                                  style={"description_width": "initial"})
                           for left in self.left}
        return widgets.VBox(list(self._dropdowns.values()))

    def _widget_answer(self) -> Any:
        chosen = {left: dropdown.value for left, dropdown in self._dropdowns.items()}
        return _INCOMPLETE if None in chosen.values() else chosen

    def _repr_lines(self) -> list[str]:
        return [f"{left} -> ?" for left in self.left] + [f"choices: {', '.join(self.choices)}"]


class Quiz:
    """A group of questions with a running score.

    Example::

        quiz = Quiz([q1, q2], title="Lecture 3 check")
        quiz                         # renders every question and "0 / 2 correct"
        saved = quiz.answers()       # {"what-does-ppo-clip-1b8d2e": "the ratio", ...}; None if unanswered
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
