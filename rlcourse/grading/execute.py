"""Running one rebuilt submission in confined kernels, and writing what the kernel's stand-ins hand out.

The plan of cells: a prelude (loads the harness :mod:`rlcourse.grading.kernel` by path and
installs its stand-ins of ``rlcourse``), the template's given cells, the student's answers, and
after each answer one harness cell. Each kernel is confined by the operating system
(:mod:`rlcourse.grading.sandbox`, docs/sandbox.md) and runs with a scrubbed environment, a
temporary working directory, a per-cell and a per-submission time limit and an output cap. A
cell that hangs, kills the kernel, floods output or stops the harness from running costs its
exercise only: the run restarts in a new kernel without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from rlcourse.grading import kinds, sandbox, spec
from rlcourse.grading.submission import Template


@dataclass(frozen=True)
class Limits:
    """The sandbox's limits (all per submission)."""

    cell_timeout: float = 60.0  # seconds for one cell (training harness cells: the exercise's own time_limit)
    submission_timeout: float = 900.0  # seconds for the whole submission, restarts included
    setup_timeout: float = 180.0  # seconds for the grader's prelude and the template's cells before the first answer
    output_bytes: int = 2_000_000  # the most output the kernel may send back
    threads: int = 1  # torch threads inside the kernel
    static_check: bool = True  # turn off only to test the runtime defences on their own
    sandbox: bool = True  # confine the kernel (docs/sandbox.md); False only with --no-sandbox
    memory_bytes: int = 3_000_000_000  # address space of the kernel process (RLIMIT_AS)
    cpu_seconds: int = 900  # CPU time of one kernel process (RLIMIT_CPU); restarts get a fresh one
    file_bytes: int = 200_000_000  # largest file the kernel may write (RLIMIT_FSIZE)
    processes: int = 512  # tasks (threads count) of the grading user in the kernel's namespace (RLIMIT_NPROC;
    # root ignores it); new processes are refused anyway by the seccomp filter, threads are not


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """nbclient with an output cap: past ``output_limit`` bytes, outputs are dropped and flagged."""

        output_limit = 2_000_000
        output_seen = 0
        over_limit = False

        def output(self, outs, msg, display_id, cell_index):
            self.output_seen += len(json.dumps(msg.get("content", {}), default=str))
            if self.output_seen > self.output_limit:
                self.over_limit = True
                return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _scrubbed_env(home: Path, threads: int) -> dict[str, str]:
    """The kernel's whole environment: no tokens, proxies or user paths from the grader's."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(home), "IPYTHONDIR": str(home / ".ipython"), "MPLCONFIGDIR": str(home / ".mpl"),
        "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(home / ".hf"), "MPLBACKEND": "Agg",
        "JUPYTER_PLATFORM_DIRS": "1", "TMPDIR": str(home / "tmp"),
    }


def _harness_source(exercise: spec.Exercise, workdir: Path, threads: int) -> str:
    return (f"# rlcourse grader harness (not student code)\nimport torch as _rlc_torch\n_rlc_torch.set_num_threads({threads})\n"
            f"_rlc_kernel.run({exercise.id!r}, {exercise.kind!r}, globals().get({exercise.function!r}), {str(workdir)!r})")


def _prelude_source(workdir: Path) -> str:
    """Load the harness by path (the sandbox lets the kernel read that one file of the package) and
    give the template's cells their stubs of ``rlcourse``: the real package never loads in the kernel."""
    return ("# rlcourse grader prelude (not student code)\nimport importlib.util as _rlc_util, sys as _rlc_sys\n"
            f"_rlc_spec = _rlc_util.spec_from_file_location('_rlc_kernel', {str(sandbox.HARNESS)!r})\n"
            "_rlc_kernel = _rlc_util.module_from_spec(_rlc_spec)\n_rlc_sys.modules['_rlc_kernel'] = _rlc_kernel\n"
            "_rlc_spec.loader.exec_module(_rlc_kernel)\n"
            f"_rlc_kernel.install_stubs({str(workdir)!r})")


@dataclass
class _Planned:
    owner: str | None  # the exercise whose failure this cell's failure is (None: the template's setup)
    kind: str  # "prelude" | "given" | "answer" | "harness"
    source: str
    timeout: float

def build_plan(template: Template, answers: dict[str, str], excluded: set[str], workdir: Path, limits: Limits) -> list[_Planned]:
    """The cells to run: prelude, the template's given cells, the student's answers, one harness per exercise."""
    # the prelude and the template's setup cells import torch: slow on a busy machine, and not the student's doing
    plan = [_Planned(None, "prelude", _prelude_source(workdir), max(limits.cell_timeout, limits.setup_timeout))]
    owner = None
    for cell in template.nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("rlcourse", {})
        role, ex = meta.get("role", "given"), meta.get("exercise")
        if role == "check":
            continue
        if role == "answer":
            owner = ex
            if ex in excluded or ex not in answers:
                continue
            plan.append(_Planned(ex, "answer", answers[ex], limits.cell_timeout))
            spec_ex = spec.exercise(ex)
            timeout = spec_ex.time_limit if kinds.kind_of(spec_ex).trains else limits.cell_timeout
            plan.append(_Planned(ex, "harness", _harness_source(spec_ex, workdir, limits.threads), timeout))
        else:
            setup = owner is None
            plan.append(_Planned(owner, "given", cell.source,
                                 max(limits.cell_timeout, limits.setup_timeout) if setup else limits.cell_timeout))
    return plan


def run_plan(plan: list[_Planned], workdir: Path, limits: Limits) -> dict[str, str]:
    """Execute ``plan`` in fresh kernels; return exercise -> why it could not be evaluated.

    A timeout, a dead kernel, an output flood or a harness that never finished marks the
    owning exercise as failed; the run then restarts in a new kernel without that
    exercise's cells (answers of other exercises run again, since later ones may use them).
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    failed: dict[str, str] = {}
    deadline = time.monotonic() + limits.submission_timeout
    outputs = workdir / "outputs"
    for _attempt in range(len(plan) + 1):
        cells = [nbformat.v4.new_code_cell(p.source) for p in plan]
        nb = nbformat.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        env = _scrubbed_env(workdir / "home", limits.threads)
        km = sandbox.kernel_manager(workdir, env, limits, confined=limits.sandbox)
        client = _client_class()(nb, km=km, kernel_name="python3", allow_errors=True, timeout=limits.cell_timeout,
                                 interrupt_on_timeout=False, startup_timeout=120, record_timing=False)
        client.output_limit = limits.output_bytes
        problem = None
        try:
            client.reset_execution_trackers()
            with client.setup_kernel(cwd=str(workdir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
                for index, planned in enumerate(plan):
                    if planned.owner in failed:
                        continue
                    if planned.kind == "harness" and (outputs / f"{planned.owner}.done.json").exists():
                        continue  # evaluated in an earlier attempt
                    remaining = deadline - time.monotonic()
                    if remaining <= 1:  # every exercise not yet evaluated runs out of time
                        problem = (None, "timeout", f"the submission ran past its total time limit "
                                                    f"({limits.submission_timeout:.0f} s)")
                        break
                    client.timeout = int(max(1, min(planned.timeout, remaining)))
                    try:
                        client.execute_cell(cells[index], index)
                    except CellTimeoutError:
                        problem = (index, "timeout", f"a cell ran longer than {client.timeout} s (an endless loop?)")
                        break
                    except DeadKernelError:
                        problem = (index, *_death(workdir, limits))
                        break
                    if client.over_limit:
                        problem = (index, "output-limit", f"output over {limits.output_bytes // 1000} kB")
                        break
                    if planned.kind == "harness" and not (outputs / f"{planned.owner}.done.json").exists():
                        problem = (index, "error", "the grader's harness could not run after this answer "
                                                   "(the answer changed how the kernel runs cells)")
                        break
        except Exception as err:  # noqa: BLE001 - a kernel that would not start or stop
            if problem is None:
                problem = (None, "crashed", f"the kernel failed ({type(err).__name__}: {str(err)[:120]})")
        finally:
            _shutdown(km)
        if problem is None:
            return failed
        index, status, reason = problem
        owner = plan[index].owner if index is not None else None
        if owner is None:
            owners = [p.owner for p in plan if p.owner and p.owner not in failed]
            for ex in dict.fromkeys(owners):
                if not (outputs / f"{ex}.done.json").exists():
                    failed[ex] = f"{status}: {reason}"
            return failed
        failed[owner] = f"{status}: {reason}"
    return failed


def _shutdown(km) -> None:
    """Kill the kernel (nbclient leaves a kernel manager it was given running); the launcher's
    death takes the whole PID namespace with it."""
    from jupyter_core.utils import run_sync

    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001 - a kernel already gone
        pass


def _death(workdir: Path, limits: Limits) -> tuple[str, str]:
    """``(status, reason)`` of a kernel that died, from how the sandbox launcher saw it end."""
    import signal

    ending = sandbox.kernel_ending(workdir)
    if ending.get("signal") in (signal.SIGXCPU, signal.SIGKILL) and ending.get("cpu_seconds", 0) >= limits.cpu_seconds:
        return "cpu-limit", f"the kernel used its {limits.cpu_seconds} s of CPU time"
    if ending.get("signal") == signal.SIGXFSZ:
        return "error", f"a file grew past the sandbox's {limits.file_bytes // 1_000_000} MB limit"
    return "crashed", "the kernel died (os._exit, a crash, or out of memory)"

def write_course(template: Template, inputs: Path) -> None:
    """``inputs/course.json``: the plain data the kernel's stubs of ``rlcourse`` hand out."""
    import dataclasses

    from rlcourse.model import loading
    from rlcourse.rl import loops

    configs = {name: {f.name: f.default for f in dataclasses.fields(cls)}
               for name, cls in vars(loops).items()
               if isinstance(cls, type) and issubclass(cls, loops.LoopConfig) and dataclasses.is_dataclass(cls)}
    course = {"policy_path": str(loading.DEFAULT_MODEL_PATH), "loops": configs}
    if any(spec.homework_of(ex) == "hw2" for ex in template.points):
        pairs = spec.training_pairs()
        course["training_pairs"] = {"prompts": pairs.prompts, "chosen": pairs.chosen, "rejected": pairs.rejected,
                                    "chosen_scores": pairs.chosen_scores.tolist(),
                                    "rejected_scores": pairs.rejected_scores.tolist()}
    (inputs / "course.json").write_text(json.dumps(course))


__all__ = ["Limits", "build_plan", "run_plan", "write_course"]
