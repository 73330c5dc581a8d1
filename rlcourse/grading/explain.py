"""Feedback a student can act on: what failed, on which input, by how much, and what to do.

Everything here turns what the grader already knows into words for the student's feedback file:

- a **wrong value**: the smallest hidden case that failed, its inputs when they are small enough to
  read, the expected and the received numbers at the first positions that differ, and the
  tolerance used (:func:`value_detail`); never the reference's code;
- a **limit** the sandbox enforced: ``stopped: more than 3 GB of memory`` (:func:`memory_reason`),
  a process the sandbox refused, with what to do about it (:func:`limit_reason`);
- an **exception**: its last line, one line of at most :data:`MAX_ERROR` characters (:func:`last_line`).

The kernel's texts (exception messages) are the student's own output: they only label a zero,
never earn a point.
"""

from __future__ import annotations

import math

import torch

MAX_ERROR = 200  # characters of an exception's last line shown
MAX_SHOWN_NUMBERS = 48  # a case whose inputs hold more numbers than this is described by shapes only
MAX_POSITIONS = 3  # differing positions shown per wrong value
MEMORY_WORDS = "GB of memory"  # in every memory reason (the gradebook's status `memory-limit` is read from it)
PROCESS_REASON = "stopped: it tried to start a process (the sandbox allows none): compute in this process, no os.fork, subprocess or multiprocessing"


def memory_reason(memory_bytes: int) -> str:
    """What a student reads when the sandbox's memory cap stopped their code, with what to do.

    Example:
        >>> memory_reason(3_000_000_000)[:35]
        'stopped: more than 3 GB of memory: '
    """
    return (f"stopped: more than {memory_bytes / 1e9:g} {MEMORY_WORDS}: build smaller tensors (no huge intermediate "
            "such as a one-hot of the vocabulary, no copies inside loops)")


def limit_reason(error: str, memory_bytes: int) -> str | None:
    """The sandbox limit an exception's text shows (memory cap, process cap), or ``None``."""
    if error.startswith("MemoryError") or "can't allocate memory" in error or "Cannot allocate memory" in error:
        return memory_reason(memory_bytes)
    if error.startswith("BlockingIOError") and "Resource temporarily unavailable" in error:
        return PROCESS_REASON
    return None


def last_line(error: str) -> str:
    """An exception's text as one short line (``"ValueError: bad shape"``), whatever the student put in it."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "an exception"
    if len(lines) > 1 and ":" not in text:  # a multi-line message: keep its type, which is on the first line
        text = f"{lines[0]} … {text}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def case_size(case: dict) -> int:
    """How many numbers a case's inputs hold (a model counts as too many to read)."""
    size = 0
    for value in case.values():
        if isinstance(value, torch.Tensor):
            size += value.numel()
        elif isinstance(value, (str, bool, int, float)):
            size += 1
        else:  # a model or anything else: not small enough to show
            size += MAX_SHOWN_NUMBERS + 1
    return size


def _number(x: float) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.6g}"


def _nested(values) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _number(values) if isinstance(values, float) else str(values)


def describe_value(value) -> str:
    """One input as a student could retype it: small tensors in full, models and large tensors by kind and shape."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= MAX_SHOWN_NUMBERS:
            return f"tensor({_nested(value.tolist())}, dtype={value.dtype})"
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, (bool, int, float, str)):
        return repr(value)
    config = getattr(value, "config", "no config")  # a model argument (spec.ModelArg)
    if config is None:
        return "the shipped tiny policy (rlcourse.load_policy())"
    if isinstance(config, dict):
        return f"a fresh Llama, LlamaConfig({', '.join(f'{k}={v!r}' for k, v in config.items())})"
    return repr(value)


def describe_case(case: dict) -> list[str]:
    """The inputs of a case, one Markdown list line each (shapes only when the case is too large to read)."""
    small = case_size(case) <= MAX_SHOWN_NUMBERS
    lines = []
    for name, value in case.items():
        text = describe_value(value)
        if not small and isinstance(value, torch.Tensor):
            text = f"a {value.dtype} tensor of shape {tuple(value.shape)}"
        lines.append(f"  - `{name}` = `{text}`")
    return lines


def differences(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float,
                limit: int = MAX_POSITIONS) -> tuple[int, list[tuple[tuple[int, ...], float, float]]]:
    """``(how many positions differ, the first ``limit`` of them as (index, expected, received))``.

    A position differs as ``torch.isclose`` says it does (NaN never matches a number). Shapes must agree.
    """
    expected = expected.to(torch.float64)
    close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)  # same shape as both
    wrong = (~close).nonzero().tolist()  # (n, ndim) indices in row-major order
    shown = [(tuple(i), float(expected[tuple(i)]), float(actual[tuple(i)])) for i in wrong[:limit]]
    return len(wrong), shown


def value_detail(case_number: int, case: dict, actual: list[torch.Tensor], expected: list[torch.Tensor],
                 rtol: float, atol: float) -> list[str]:
    """Markdown lines: the failing case's inputs, expected vs received where they differ, the tolerance."""
    lines = [f"- hidden case {case_number}, inputs:"] + describe_case(case)
    for k, (a, e) in enumerate(zip(actual, expected)):
        if tuple(a.shape) != tuple(e.shape):
            lines.append(f"- output {k + 1}: received shape {tuple(a.shape)}, expected shape {tuple(e.shape)}")
            continue
        count, shown = differences(a, e, rtol, atol)
        if not count:
            continue
        lines.append(f"- output {k + 1} differs at {count} of {a.numel()} position(s); the first:")
        for index, want, got in shown:
            where = f"[{', '.join(map(str, index))}]" if index else "(the number)"
            lines.append(f"  - at {where}: expected {_number(want)}, received {_number(got)}")
    lines.append(f"- tolerance: |received − expected| ≤ {atol:g} + {rtol:g} × |expected| at every position")
    return lines


__all__ = ["memory_reason", "limit_reason", "last_line", "case_size", "describe_case", "describe_value",
           "differences", "value_detail", "MEMORY_WORDS", "PROCESS_REASON"]
