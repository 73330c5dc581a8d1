"""Run the course's notebooks headless, as an instructor does before the term starts.

``rlcourse run [PATHS…] [--out DIR]`` is :func:`main_run` below; the pieces are usable alone:

- :func:`course_order` expands folders and sorts notebooks as the course is taught
  (``notebooks/`` by name, then ``solutions/``, then anything else);
- :func:`run_notebook` executes one notebook in a fresh kernel (nbclient), writes the
  executed copy elsewhere and returns a :class:`RunResult` (seconds, the kernel's peak
  memory, status, first error line); a broken notebook is a failed result, never a crash;
- :func:`format_table` renders results as the table the command prints.

Example::

    >>> results = run_course(["notebooks"], out_dir="/tmp/executed")   # doctest: +SKIP
    >>> print(format_table(results))                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

# Folders in the order the course is taught; anything else comes after them.
COURSE_FOLDERS = ("notebooks", "solutions")


@dataclass(frozen=True)
class RunResult:
    """One notebook's run.

    Attributes:
        path: the source notebook (never written to).
        status: "ok", "failed" (a cell raised or the kernel died), "timeout" or "malformed"
            (not a readable, valid notebook).
        seconds: wall-clock time from kernel start to shutdown.
        peak_mib: the kernel process's peak resident memory in MiB (None when unknown).
        error: the first line of the error ("ValueError: ..."), "" when ok.
        out_path: where the executed copy was written (None when nothing could be run).
    """

    path: Path
    status: str
    seconds: float = 0.0
    peak_mib: float | None = None
    error: str = ""
    out_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def course_order(paths: list[str | Path]) -> list[Path]:
    """Expand folders to their ``*.ipynb`` files and sort them in course order.

    Order: files under a ``notebooks`` folder by name, then under ``solutions``, then the
    rest by path. Checkpoint copies are ignored. A missing path raises ValueError.

    Example: ``["solutions", "notebooks/02_x.ipynb", "notebooks/01_y.ipynb"]`` ->
    ``[notebooks/01_y, notebooks/02_x, solutions/hw1, ...]``.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise ValueError(f"{path} is not a notebook: pass .ipynb files or folders that hold them.")
            found.append(path)
        else:
            raise ValueError(f"{path} does not exist: pass notebooks or folders of notebooks.")

    def rank(p: Path) -> tuple[int, str]:
        folders = [part for part in p.resolve().parent.parts if part in COURSE_FOLDERS]
        group = COURSE_FOLDERS.index(folders[-1]) if folders else len(COURSE_FOLDERS)
        return group, str(p)

    unique = {p.resolve(): p for p in found}  # the same file named twice runs once
    return sorted(unique.values(), key=rank)


def default_paths(root: Path = Path(".")) -> list[Path]:
    """The course's folders under ``root`` that exist (``notebooks/``, ``solutions/``)."""
    folders = [root / name for name in COURSE_FOLDERS if (root / name).is_dir()]
    if not folders:
        raise ValueError(f"no notebooks/ or solutions/ folder in {root.resolve()}: "
                         "run from the course folder or pass notebooks to run.")
    return folders


def _peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory of process ``pid`` in MiB (Linux: VmHWM, the kernel's high-water mark).

    Elsewhere, the current RSS (psutil) is returned; sampled after every cell, its maximum
    is a lower bound of the true peak.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except Exception:  # no psutil, or the process is gone
        return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _out_path(path: Path, out_dir: Path) -> Path:
    """``out_dir/<source folder name>/<name>``: keeps notebooks/ and solutions/ apart."""
    return out_dir / path.resolve().parent.name / path.name


def _mark_expected_errors(nb: nbformat.NotebookNode) -> None:
    """Cells marked ``# NBVAL_RAISES_EXCEPTION`` raise on purpose: tag them as nbclient expects."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "NBVAL_RAISES_EXCEPTION" in cell.source.split("\n", 1)[0]:
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")


def run_notebook(path: str | Path, out_dir: str | Path, timeout: int = 600) -> RunResult:
    """Execute one notebook top to bottom in a fresh kernel started in the notebook's folder.

    The executed copy (with outputs up to the first error) goes to ``out_dir``; the source is
    never written. ``timeout`` is per cell, in seconds.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path, out_dir = Path(path), Path(out_dir)
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # not JSON, not a notebook, unreadable: one failed row
        return RunResult(path, "malformed", error=_first_line(f"{type(err).__name__}: {err}"))
    _mark_expected_errors(nb)
    peaks: list[float] = []

    def record_peak(**_hook_args) -> None:
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
        peak = _peak_rss_mib(pid) if pid else None
        if peak is not None:
            peaks.append(peak)

    client = NotebookClient(nb, timeout=timeout, kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            resources={"metadata": {"path": str(path.resolve().parent)}},
                            on_cell_executed=record_peak)
    status, error = "ok", ""
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="rlcourse-kernel-") as sockets:
            if os.name == "posix":  # local sockets, not TCP: nothing on the network, no plain-text warning
                client.create_kernel_manager()
                client.km.transport, client.km.ip = "ipc", os.path.join(sockets, "k")
            client.execute()
    except CellExecutionError as err:
        status, error = "failed", _first_line(f"{err.ename}: {err.evalue}")
    except CellTimeoutError as err:
        status, error = "timeout", _first_line(str(err))
    except DeadKernelError as err:
        status, error = "failed", _first_line(f"kernel died: {err}")
    except Exception as err:  # e.g. the kernel could not start
        status, error = "failed", _first_line(f"{type(err).__name__}: {err}")
    seconds = time.perf_counter() - start
    out_path = _out_path(path, out_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_path)
    return RunResult(path, status, seconds, max(peaks) if peaks else None, error, out_path)


def check_out_dir(notebooks: list[Path], out_dir: Path) -> None:
    """Refuse an ``out_dir`` where an executed copy would overwrite a source notebook."""
    sources = {p.resolve() for p in notebooks}
    for p in notebooks:
        if _out_path(p, out_dir).resolve() in sources:
            raise ValueError(f"--out {out_dir} would overwrite the source {p}: choose another folder.")


def run_course(paths: list[str | Path], out_dir: str | Path, timeout: int = 600,
               progress: bool = True, on_result=None) -> list[RunResult]:
    """Run every notebook under ``paths`` in course order, one fresh kernel each.

    ``on_result(result)``, when given, is called as each notebook finishes (e.g. to print it).
    """
    from tqdm import tqdm

    notebooks, out_dir = course_order(paths), Path(out_dir)
    check_out_dir(notebooks, out_dir)
    results = []
    bar = tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress, file=sys.stderr)
    for path in bar:
        bar.set_postfix_str(path.name)
        results.append(run_notebook(path, out_dir, timeout=timeout))
        if on_result is not None:
            on_result(results[-1])
    return results


def format_table(results: list[RunResult]) -> str:
    """The summary table: notebook, seconds, peak memory, status, first error line, and totals."""
    rows = [(str(r.path), f"{r.seconds:.1f}", "n/a" if r.peak_mib is None else f"{r.peak_mib:.0f}",
             r.status, r.error[:100]) for r in results]
    peaks = [r.peak_mib for r in results if r.peak_mib is not None]
    failed = sum(not r.ok for r in results)
    rows.append((f"total ({len(results)} notebooks, {failed} failed)", f"{sum(r.seconds for r in results):.1f}",
                 f"{max(peaks):.0f}" if peaks else "n/a", "ok" if failed == 0 else "FAILED", ""))
    header = ("notebook", "seconds", "peak MiB", "status", "first error")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = []
    for k, row in enumerate([header, *rows]):
        if k == len(rows):  # a rule above the totals
            lines.append("-" * (sum(widths) + 8))
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]), row[3].ljust(widths[3])]
        lines.append("  ".join(cells + [row[4]]).rstrip())
    return "\n".join(lines)


def main_run(paths: list[str], out: str | None, timeout: int = 600, progress: bool = True) -> int:
    """What ``rlcourse run`` does: run, write copies, print the table; 1 when any notebook failed."""
    targets = [Path(p) for p in paths] if paths else default_paths()
    out_dir = Path(out) if out else Path(tempfile.mkdtemp(prefix="rlcourse-run-"))
    results = run_course(targets, out_dir, timeout=timeout, progress=progress)
    if not results:
        raise ValueError(f"no notebooks found in {', '.join(map(str, targets))}.")
    print(format_table(results))
    print(f"executed copies in {out_dir}")
    return 0 if all(r.ok for r in results) else 1
