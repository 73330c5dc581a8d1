import pytest
import torch

from rlcourse import utils


@pytest.fixture(scope="session", autouse=True)
def _deterministic_threads():
    torch.set_num_threads(utils.DEFAULT_THREADS)
    utils.quiet()


@pytest.fixture(scope="session")
def tiny():
    """The shipped tiny policy and its tokenizer (loaded once per test session)."""
    from rlcourse.models import load_policy

    return load_policy()
