"""The course's quiz questions: a hashed bank in the package, built from a plain-text source.

Authors write ``solutions/quizzes.py`` (instructor material, like the solution notebooks): one
dict per quiz, with plain answers. ``rlcourse build-quizzes`` turns it into
``rlcourse/assets/quizzes.json``, which ships with the package and holds no plain answer:

- a multiple choice keeps its options sorted by text (their order says nothing); its answer
  is ``answer_sha256``, the salted hash of the correct text (or sorted list of texts);
- an ordering keeps its items in the shuffled order the student sees (never the right one);
- a matching keeps its left terms and its sorted choices; the answer is the hashed dict;
- the explanation, which usually restates the answer, is sealed with a key made from the
  correct answer (:func:`rlcourse.classroom.quiz.seal`): it appears only once the question is solved.

Hints stay readable: they guide and must not give the answer away. A test rebuilds the bank
from the source and fails when the committed file is stale (as it does for ``exercises/``).

Source format (``QUIZZES`` in ``solutions/quizzes.py``)::

    QUIZZES = {
        "01": {"title": "Notebook 01", "questions": [
            {"id": "q1", "kind": "choice", "question": "…?", "options": ["…", "…"],
             "answer": "the correct option's text",        # a list of texts: several correct
             "explanation": "shown once solved", "hint": "shown after a wrong answer"},
            {"id": "q2", "kind": "ordering", "question": "…", "items": ["first", "second", "…"], …},
            {"id": "q3", "kind": "matching", "question": "…", "pairs": {"left": "right", …}, …},
        ]},
    }
"""

from __future__ import annotations

import json
import runpy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from rlcourse.classroom.quiz import Matching, MultipleChoice, Ordering, Question, Quiz, answer_hash, default_salt, seal

FORMAT = "rlcourse-quiz-bank/1"
BANK = Path(__file__).parent.parent / "assets" / "quizzes.json"  # what build-quizzes writes by default
KINDS = ("choice", "ordering", "matching")
_COMMON = {"id", "kind", "question", "explanation", "hint"}
_FIELDS = {"choice": _COMMON | {"options", "answer"}, "ordering": _COMMON | {"items"},
           "matching": _COMMON | {"pairs"}}


# ----------------------------------------------------------------------------- build (instructor side)

def _hashed_record(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """One source question (plain answer) -> its bank record (hashed answer, sealed explanation)."""
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {kind!r}.")
    unknown = set(entry) - _FIELDS[kind]
    missing = {"id", "question"} - set(entry)
    if unknown or missing:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)} or missing fields {sorted(missing)}; "
                         f"a {kind} question takes {sorted(_FIELDS[kind])}.")
    text, salt = entry["question"], default_salt(entry["question"])
    record: dict[str, Any] = {"id": entry["id"], "kind": kind, "question": text, "salt": salt}
    if kind == "choice":
        answer = entry["answer"]
        multiple = isinstance(answer, list)
        plain = set(answer) if multiple else answer
        built = MultipleChoice(text, entry["options"], answer=plain, id=entry["id"])
        correct = sorted(answer) if multiple else answer
        record |= {"options": sorted(built.options), "multiple": multiple}
    elif kind == "ordering":
        built = Ordering(text, entry["items"], id=entry["id"])
        correct = list(entry["items"])
        record |= {"items": built.shown}
    else:
        built = Matching(text, entry["pairs"], id=entry["id"])
        correct = dict(entry["pairs"])
        record |= {"left": built.left, "choices": sorted(set(correct.values()))}
    record["answer_sha256"] = answer_hash(correct, salt)
    record["sealed_explanation"] = seal(entry.get("explanation", ""), correct, salt)
    record["hint"] = entry.get("hint", "")
    return record


def bank_from_source(source: dict[str, Any]) -> dict[str, Any]:
    """The hashed bank (a JSON-ready dict) of a ``QUIZZES`` source dict."""
    quizzes = {}
    for key, spec in source.items():
        if not isinstance(spec, dict) or set(spec) != {"title", "questions"}:
            raise ValueError(f"quiz {key!r}: expected a dict with 'title' and 'questions', got {spec!r}.")
        records = [_hashed_record(entry, f"quiz {key!r} question {k + 1}") for k, entry in enumerate(spec["questions"])]
        ids = [r["id"] for r in records]
        if len(set(ids)) != len(ids):
            raise ValueError(f"quiz {key!r}: question ids repeat: {ids}.")
        quizzes[key] = {"title": spec["title"], "questions": records}
    return {"format": FORMAT,
            "generated": "by `rlcourse build-quizzes` from solutions/quizzes.py; do not edit by hand",
            "quizzes": quizzes}


def load_source(path: Path) -> dict[str, Any]:
    """The ``QUIZZES`` dict of an authoring file such as ``solutions/quizzes.py``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no quiz source at {path}; pass the instructor's solutions/quizzes.py.")
    source = runpy.run_path(str(path)).get("QUIZZES")
    if not isinstance(source, dict):
        raise ValueError(f"{path} must define a dict QUIZZES (quiz key -> title and questions).")
    return source


def render(source_path: Path) -> str:
    """The exact text ``build-quizzes`` writes (what the staleness test compares)."""
    return json.dumps(bank_from_source(load_source(source_path)), ensure_ascii=False, indent=1) + "\n"


def build_bank(source_path: Path, target: Path = BANK) -> Path:
    """Write the hashed bank of ``source_path`` to ``target`` (only when it changed); return ``target``."""
    text, target = render(source_path), Path(target)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return target


# ----------------------------------------------------------------------------- load (student side)

@lru_cache(maxsize=1)
def load_bank() -> dict[str, Any]:
    """The shipped bank (``rlcourse/assets/quizzes.json``) as a dict."""
    bank = json.loads(resources.files("rlcourse").joinpath("assets/quizzes.json").read_text(encoding="utf-8"))
    if bank.get("format") != FORMAT:
        raise ValueError(f"rlcourse/assets/quizzes.json has format {bank.get('format')!r}, expected {FORMAT!r}; "
                         "run `rlcourse build-quizzes`.")
    return bank


def question_from_record(record: dict[str, Any]) -> Question:
    """A fresh question widget from one bank record."""
    common = {"hint": record["hint"], "id": record["id"], "salt": record["salt"],
              "answer_sha256": record["answer_sha256"], "sealed_explanation": record["sealed_explanation"]}
    if record["kind"] == "choice":
        return MultipleChoice(record["question"], record["options"], multiple=record["multiple"], **common)
    if record["kind"] == "ordering":
        return Ordering(record["question"], record["items"], **common)
    return Matching(record["question"], left=record["left"], choices=record["choices"], **common)


def questions(key: str) -> list[Question]:
    """Fresh questions of quiz ``key`` ("01" … "08" for lectures, "hw1" … "hw6" for homework)."""
    quizzes = load_bank()["quizzes"]
    if key not in quizzes:
        raise ValueError(f"unknown quiz {key!r}; expected one of {sorted(quizzes)}.")
    return [question_from_record(record) for record in quizzes[key]["questions"]]


def quiz(key: str) -> Quiz:
    """A fresh :class:`~rlcourse.classroom.quiz.Quiz` for ``key``, titled as in the bank."""
    return Quiz(questions(key), title=load_bank()["quizzes"][key]["title"])


def lecture_quiz(notebook: str) -> Quiz:
    """The quiz that ends lecture notebook ``notebook`` ("01" … "08"), from the hashed bank."""
    return quiz(notebook)


def homework_quiz(homework: str) -> Quiz:
    """The quiz of homework ``homework`` ("hw1" … "hw6"), questions keyed "q1", "q2", …"""
    return quiz(homework)


__all__ = ["BANK", "FORMAT", "bank_from_source", "build_bank", "homework_quiz", "lecture_quiz", "load_bank", "load_source",
           "question_from_record", "questions", "quiz", "render"]
