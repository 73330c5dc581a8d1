"""rlcourse: reinforcement learning for language models, as a runnable offline course.

    >>> import rlcourse
    >>> generator = rlcourse.setup(seed=0)          # threads, quiet libraries, seeds
    >>> model, tokenizer = rlcourse.load_policy()   # the shipped tiny model, no download
"""

__version__ = "0.1.0"

from rlcourse.classroom.claims import expect  # noqa: E402

# torch and transformers load on first use (PEP 562), not on `import rlcourse`: the command line,
# the grader and the quizzes import the package without needing a model, and importing
# transformers' model classes alone takes about 3 s.
_LAZY = {"load_policy": "rlcourse.model.loading", "load_tokenizer": "rlcourse.model.loading",
         "set_seed": "rlcourse.model.runtime", "setup": "rlcourse.model.runtime"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlcourse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["expect", "load_policy", "load_tokenizer", "set_seed", "setup", "__version__"]
