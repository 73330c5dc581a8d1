import pytest
import torch

from rlcourse.model import runtime


@pytest.fixture(scope="session", autouse=True)
def _deterministic_threads():
    torch.set_num_threads(runtime.DEFAULT_THREADS)
    runtime.quiet()


@pytest.fixture(scope="session")
def tiny():
    """The shipped tiny policy and its tokenizer (loaded once per test session)."""
    from rlcourse.model.loading import load_policy

    return load_policy()
