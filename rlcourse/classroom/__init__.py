"""What a notebook needs around the science: quizzes and their hashed bank, widgets, plots, ``expect``
claims, printing helpers, the headless notebook runner and the wheel that ships the course.

Uses every layer below it; only :mod:`rlcourse.grading` and the command line sit above it.
"""
