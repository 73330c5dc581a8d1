"""tests/numerics.py: the two numerics CI runs the notebooks under really change the last bits here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import numerics

ROOT = Path(__file__).resolve().parents[1]

# Matrix products and a softmax gradient of the course's sizes; prints torch's kernel level and
# digests of the results' bytes.
PROBE = """
import hashlib, numpy as np, torch
torch.set_num_threads(2)
rng = np.random.default_rng(0)  # inputs from NumPy: torch.randn itself draws differently under scalar kernels
tensor = lambda *shape: torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
products = b"".join((tensor(m, k) @ tensor(k, n)).numpy().tobytes() for m, k, n in [(256, 128, 128), (2048, 128, 512)])
x = tensor(64, 128).requires_grad_(True)
(x.softmax(-1) * tensor(64, 128)).sum().backward()
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(products).hexdigest()[:16],
      hashlib.sha256(x.grad.numpy().tobytes()).hexdigest()[:16])
"""


def probe(env: dict[str, str]) -> tuple[str, str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], out[1], out[2]


def test_an_avx512_machine_checks_an_avx2_laptop_and_any_other_mkls_oldest_path():
    assert numerics.other_cpu({"avx2", "avx512f"}) == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
    for flags in ({"avx2", "fma"}, set()):  # an AVX2 machine runs the AVX2 path already; macOS has no cpuinfo
        assert numerics.other_cpu(flags) == {"MKL_CBWR": "COMPATIBLE"}
    assert numerics.numerics("scalar") == {"ATEN_CPU_CAPABILITY": "default"}
    with pytest.raises(SystemExit, match="unknown numerics 'avx'"):
        numerics.numerics("avx")


def test_the_makefile_gets_env_assignments_from_the_script():
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "numerics.py"), "other-cpu"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert dict(item.split("=", 1) for item in out) == numerics.other_cpu()


@pytest.mark.skipif(sys.platform != "linux" or "avx2" not in numerics.cpu_flags(),
                    reason="the switches perturb an x86 CPU with MKL; CI's machine is one")
def test_each_numerics_changes_what_torch_computes_on_this_machine():
    """If torch stopped reading these variables, CI would re-check the native numerics and call it portable."""
    native = probe({})
    scalar = probe(numerics.numerics("scalar"))
    other = probe(numerics.numerics("other-cpu"))
    assert scalar[0] == "DEFAULT" and scalar[2] != native[2]  # the softmax gradient: ATen's kernels
    assert other[1] != native[1]  # the matrix product: MKL's code path
    if "avx512f" in numerics.cpu_flags():
        assert native[0] == "AVX512" and other[0] == "AVX2" and other[2] != native[2]


def test_make_runs_each_suite_under_its_numerics():
    """`make -n` prints the recipes without running them: each pytest line carries its numerics."""
    out = subprocess.run(["make", "-n", "--no-print-directory", "test", "test-portable"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    pytest_lines = [line for line in out.splitlines() if " -m pytest " in line]
    assert len(pytest_lines) == 2, out
    for line, name in zip(pytest_lines, ("scalar", "other-cpu")):
        assert line.startswith("env ") and "-n 2 --dist loadscope" in line
        assert all(f"{key}={value}" in line for key, value in numerics.numerics(name).items()), (name, line)
    assert "tests " in pytest_lines[0] and "notebooks solutions" in pytest_lines[1]
