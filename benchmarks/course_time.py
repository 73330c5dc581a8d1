"""How long the whole course takes to run, and how much memory it needs.

Every notebook in notebooks/ and solutions/ (course order), each in a fresh kernel through
rlcourse.classroom.runner (the code behind `rlcourse run`): seconds and the kernel's peak resident
memory per notebook, then the total time and the largest peak. Goal on the course's 2-core
reference machine: the whole course under 6 minutes, no notebook over 90 s, no kernel above 1.5 GB
(issue 27; issue 15 asked for 4 minutes before notebooks 07 and 08 existed).

Prints figures; asserts nothing. Usage:

    .venv/bin/python benchmarks/course_time.py [PATHS…] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from rlcourse.classroom import runner

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="default: notebooks/ and solutions/ of this repository")
    parser.add_argument("--out", default=None, help="folder for the executed copies (default: a temporary one)")
    args = parser.parse_args()
    paths = args.paths or runner.default_paths(ROOT)
    def show(result: runner.RunResult) -> None:  # each row as it comes: a long run is readable while it goes
        peak = "n/a" if result.peak_mib is None else f"{result.peak_mib:.0f} MiB"
        print(f"{result.path}: {result.seconds:.1f} s, peak {peak}, {result.status} {result.error}".rstrip(), flush=True)

    print(f"load average at start: {os.getloadavg()[0]:.1f} (1 min)", flush=True)
    with tempfile.TemporaryDirectory(prefix="course-time-") as tmp:
        results = runner.run_course(paths, args.out or tmp, on_result=show)
    print(f"load average at end: {os.getloadavg()[0]:.1f} (1 min)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    print(runner.format_table(results))
    total = sum(r.seconds for r in results)
    peaks = [r.peak_mib for r in results if r.peak_mib is not None]
    print(f"whole course: {total / 60:.1f} min (goal < 6), largest kernel peak "
          f"{max(peaks) / 1024 if peaks else float('nan'):.2f} GiB (goal < 1.5)")


if __name__ == "__main__":
    main()
