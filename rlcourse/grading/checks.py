"""The check cells' feedback: run the public cases and print one line.

``check("hw1.token_logprobs", token_logprobs)`` prints ``pass`` or what is wrong (not
implemented yet, an error, a shape, NaN, values off) with a hint. It runs only the
public cases (a fixed seed, small sizes); it never shows hidden cases, and it is a
learning aid, not the grade: the grader runs its own cases in its own process. What each
kind of exercise checks is in :mod:`rlcourse.grading.kinds`, shared with the grader.
"""

from __future__ import annotations

from rlcourse.grading import kinds, spec


def check(exercise_id: str, fn) -> None:
    """Print one line of feedback on ``fn`` for ``exercise_id`` (public cases only)."""
    ex = spec.exercise(exercise_id)
    kind = kinds.kind_of(ex)  # an exercise of a kind no code handles is the course's bug: raise, do not print
    if not callable(fn):
        print(f"{exercise_id}: expected the function {ex.function}, got a {type(fn).__name__}; run its cell first.")
        return
    try:
        line = kind.check(ex, fn)
    except NotImplementedError:
        line = f"not implemented yet: replace the `raise NotImplementedError` in {ex.function} with your code."
    except Exception as err:  # noqa: BLE001
        line = f"raised {type(err).__name__}: {err}. Hint: {ex.hint}"
    print(f"{exercise_id}: {line}")
