"""Homework: exercise specs, student check cells, ``build-exercises`` and the instructor grader.

Students use :func:`check` (one line of feedback per exercise) and :func:`quiz`;
instructors use ``rlcourse build-exercises`` and ``rlcourse grade`` (see the README).
"""

from rlcourse.grading.checks import check
from rlcourse.grading.spec import EXERCISES, quiz_for as quiz

GRADER_VERSION = "1.1"  # 1.1: feedback that names what failed and where, the class summary, pre-warmed kernels

__all__ = ["check", "quiz", "EXERCISES", "GRADER_VERSION"]
