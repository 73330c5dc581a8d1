"""The numerics CI runs the notebooks under: two that no stored output was computed with.

Floats differ across CPUs (vector width, BLAS code path) and training amplifies the last bit, so a
stored output that only the maintainer's CPU reproduces is a defect. These environment variables
perturb the numerics on this machine, as another CPU would:

- ``scalar`` (``make test``): torch's scalar, non-vectorised ATen kernels, another summation order
  in every reduction and elementwise op, on any CPU.
- ``other-cpu`` (``make test-portable``): on a CPU with AVX-512, exactly the numerics of an AVX2
  laptop (most Intel and AMD laptops): torch's AVX2 kernels and MKL's AVX2 code path, another
  blocking of every matrix product. Where the native path is already AVX2 or narrower, MKL's
  reproducibility mode on its oldest code path instead (``MKL_CBWR=COMPATIBLE``, about 1.5x slower).

So every notebook runs twice in CI, each time under numerics other than those its outputs were
stored with. ``python tests/numerics.py NAME`` prints ``VAR=VALUE ...`` for ``env`` (the Makefile's
use); ``benchmarks/claim_margins.py`` imports the same two.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCALAR = {"ATEN_CPU_CAPABILITY": "default"}
AVX2_LAPTOP = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
MKL_COMPATIBLE = {"MKL_CBWR": "COMPATIBLE"}


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is missing (macOS, Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def other_cpu(flags: set[str] | None = None) -> dict[str, str]:
    """An AVX2 laptop's numerics on an AVX-512 machine; MKL's oldest code path anywhere else."""
    return dict(AVX2_LAPTOP if "avx512f" in (cpu_flags() if flags is None else flags) else MKL_COMPATIBLE)


def numerics(name: str) -> dict[str, str]:
    if name == "scalar":
        return dict(SCALAR)
    if name == "other-cpu":
        return other_cpu()
    raise SystemExit(f"unknown numerics {name!r}: use 'scalar' or 'other-cpu'.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/numerics.py scalar|other-cpu")
    print(" ".join(f"{key}={value}" for key, value in numerics(sys.argv[1]).items()))
