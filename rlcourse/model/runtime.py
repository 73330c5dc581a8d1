"""Seeding, thread count, quiet libraries, devices: what makes a run repeat on one machine.

Every notebook starts with ``rlcourse.setup(seed=0)`` so that a run gives the same numbers
on the same machine (the thread count changes the last bits of float sums, so it is fixed
too).
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings

import numpy as np
import torch

DEFAULT_THREADS = 2  # the course's reference machine is a 2-core laptop


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a fresh ``torch.Generator`` seeded with ``seed``.

    Sampling functions in this package take an explicit generator, so a cell that samples
    gives the same result however many cells ran before it.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def quiet() -> None:
    """Silence the progress widgets and warnings that libraries print differently on every run."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")
    warnings.filterwarnings("ignore", category=FutureWarning)


@contextlib.contextmanager
def quiet_loading(source: str):
    """No "Loading weights" bar from ``transformers`` while a model loads from a local folder.

    The course's models load in milliseconds; a bar nobody asked for only clutters a script's
    output. A Hub name (a real download and a long load) keeps the library's bars.
    """
    from transformers.utils import logging

    if not os.path.isdir(source) or not logging.is_progress_bar_enabled():
        yield
        return
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.enable_progress_bar()


def setup(seed: int = 0, threads: int = DEFAULT_THREADS) -> torch.Generator:
    """The first call of every notebook: fix threads, quiet libraries, seed everything."""
    torch.set_num_threads(threads)
    quiet()
    return set_seed(seed)


def default_device() -> torch.device:
    """CUDA when present, else CPU (the course is written for, and tested on, the CPU)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
