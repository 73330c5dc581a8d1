"""The few helpers every layer of the package uses: one-sentence input errors and progress bars.

This module sits below every subpackage (see ``docs/architecture.md``) and imports none of them.
"""

from __future__ import annotations


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
