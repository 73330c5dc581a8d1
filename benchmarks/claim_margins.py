"""How much room each notebook claim's band leaves, under this CPU's numerics and two perturbed ones.

A notebook checks what its prose says about a trained run with ``rlcourse.expect(claim, value,
low, high)``. This script runs notebooks (each in a fresh kernel, through rlcourse.classroom.runner) three
times: with normal numerics and under the two numerics CI runs them with (``tests/numerics.py``:
``scalar``, torch's scalar kernels, for ``make test``; ``other-cpu``, an AVX2 laptop's kernels and
MKL path on an AVX-512 machine, for ``make test-portable``), as other CPUs would compute. Every claim is
recorded (``RLCOURSE_CLAIMS_LOG``) and printed with its band, its value in each run and the room
left: the smallest distance from a value to the nearer edge of the band. Use it to choose a band a
few times the spread, and tight enough that a broken implementation fails. A run that stops at a
failed claim shows the values up to it and its error line.

Prints figures; asserts nothing. Usage:

    .venv/bin/python benchmarks/claim_margins.py [NOTEBOOKS…]      # default: notebooks/
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rlcourse.classroom import claims, runner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import numerics  # noqa: E402  (tests/numerics.py: the numerics CI uses, defined once)

NUMERICS = {"normal": {}, "scalar": numerics.numerics("scalar"), "other-cpu": numerics.numerics("other-cpu")}


def run_with(paths: list[Path], env: dict[str, str], tmp: Path, name: str) -> tuple[list[dict], list[runner.RunResult]]:
    """Run the notebooks with ``env`` added to the kernels' environment; return the claims they logged."""
    log = tmp / f"{name}.jsonl"
    saved = dict(os.environ)
    os.environ.update(env, **{claims.LOG_ENV: str(log)})
    try:
        results = runner.run_course(paths, tmp / name, progress=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return rows, results


def room(row: dict) -> float | None:
    """Distance from the value to the nearer edge of its band (negative: outside); None for yes/no claims."""
    if row["value"] is None:
        return None
    edges = [row["value"] - row["low"] if row["low"] is not None else float("inf"),
             row["high"] - row["value"] if row["high"] is not None else float("inf")]
    return min(edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "notebooks")])
    args = parser.parse_args()
    paths = runner.course_order(args.paths)
    by_claim: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="claim-margins-") as tmp:
        for name, env in NUMERICS.items():
            rows, results = run_with(paths, env, Path(tmp), name)
            for r in results:
                print(f"[{name}] {r.path.name}: {r.status} {r.seconds:.0f} s {r.error}".rstrip(), flush=True)
            for row in rows:
                entry = by_claim.setdefault(row["claim"], {"low": row["low"], "high": row["high"], "values": {}})
                entry["values"][name] = row["value"] if row["value"] is not None else row["ok"]
    print(f"\n{'claim':70s} {'band':>17s} " + " ".join(f"{n:>14s}" for n in NUMERICS) + f" {'room':>8s}")
    for claim, entry in by_claim.items():
        low, high = entry["low"], entry["high"]
        band = "yes/no" if low is None and high is None else f"[{'' if low is None else f'{low:g}'}, {'' if high is None else f'{high:g}'}]"
        values = [entry["values"].get(n) for n in NUMERICS]
        shown = " ".join(f"{'-' if v is None else (str(v) if isinstance(v, bool) else f'{v:.4g}'):>14s}" for v in values)
        rooms = [room({"value": v, "low": low, "high": high}) for v in values if isinstance(v, float)]
        print(f"{claim[:70]:70s} {band:>17s} {shown} {min(rooms) if rooms else float('nan'):8.3g}")


if __name__ == "__main__":
    main()
