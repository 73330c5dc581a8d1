"""Small shared helpers: seeding, thread count, quiet libraries, devices.

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


def check(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``: the package's one-sentence input errors."""
    if not condition:
        raise ValueError(message)


def check_texts(texts, name: str = "texts") -> None:
    """Require a list (or tuple) of strings: the texts that rewards and reward models score."""
    check(
        isinstance(texts, (list, tuple)) and all(isinstance(t, str) for t in texts),
        f"{name} must be a list of strings, got {type(texts).__name__}; pass e.g. generation.full_texts().",
    )


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


def rounded(x: torch.Tensor, decimals: int = 2) -> torch.Tensor:
    """``x`` rounded for printing, with no ``-0.00``: a last-bit difference between CPUs must
    not change a stored output (``round(-1e-9) + 0.0`` is ``+0.0``).

    Example:
        >>> rounded(torch.tensor([-1e-9, 0.126, -0.004]))
        tensor([0.0000, 0.1300, 0.0000])
    """
    return torch.round(x, decimals=decimals) + 0.0


def default_device() -> torch.device:
    """CUDA when present, else CPU (the course is written for, and tested on, the CPU)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def show_source(obj) -> None:
    """Print the source of a package function or class (notebooks show code, never paste it)."""
    import inspect

    print(inspect.getsource(obj))


def progress_bar(iterable=None, **kwargs):
    """A ``tqdm`` bar whose saved notebook output shows where it ended, not 0%.

    In JupyterLab ``tqdm.auto`` draws a widget, and the plain-text copy saved with the notebook
    (what nbviewer, GitHub and a terminal show) is the bar as it was when first displayed: 0%.
    Here the widget is displayed with a display id and re-displayed when the bar closes, so the
    saved text reads e.g. ``PPO: 100%|██████████| 50/50``. Outside a notebook it is plain
    ``tqdm.auto``. Takes ``tqdm``'s arguments.
    """
    from tqdm.auto import tqdm as auto_tqdm
    from tqdm.notebook import tqdm as notebook_tqdm

    if kwargs.get("disable") or not issubclass(auto_tqdm, notebook_tqdm):
        return auto_tqdm(iterable, **kwargs)
    from IPython.display import display

    bar = notebook_tqdm(iterable, display=False, **kwargs)
    handle = display(bar.container, display_id=True)
    close = bar.close
    refreshed = False

    def close_and_refresh() -> None:
        nonlocal refreshed
        close()
        if handle is None or refreshed:  # tqdm calls close() again from __del__: refresh once, while the bar lives
            return
        refreshed = True
        try:  # the widget holds the bar weakly: gone while a forgotten bar is collected
            bundle = bar.container._repr_mimebundle_()  # text and widget view, rendered now, while the bar lives
        except ReferenceError:
            return
        handle.update(bundle, raw=True)  # raw: nothing re-renders the widget later, when its bar may be gone

    bar.close = close_and_refresh
    return bar
