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
from dataclasses import dataclass, field
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
    prewarm: bool = True  # start confined kernels from a process that imported torch & co. once (docs/sandbox.md)
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


@dataclass
class Ran:
    """What running a submission's plan found, per exercise (the verdicts come later, from the outputs)."""

    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # exercise -> (status, reason): not evaluated
    raised: dict[str, str] = field(default_factory=dict)  # exercise -> its answer cell's exception, last line


# what a student reads for each kind of cell that failed
_WHAT = {"answer": "your answer cell", "harness": "your function on the hidden inputs",
         "given": "a given cell after your answer", "prelude": "the grader's setup", None: "the grader's setup"}


def run_plan(plan: list[_Planned], workdir: Path, limits: Limits) -> Ran:
    """Execute ``plan`` in fresh kernels; return which exercises could not be evaluated, and why, and
    which answer cells raised (their exception's last line).

    A timeout, a dead kernel, an output flood or a harness that never finished marks the
    owning exercise as failed; the run then restarts in a new kernel without that
    exercise's cells (answers of other exercises run again, since later ones may use them).
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    ran = Ran()
    failed = ran.failed
    deadline = time.monotonic() + limits.submission_timeout
    outputs = workdir / "outputs"
    for _attempt in range(len(plan) + 1):
        cells = [nbformat.v4.new_code_cell(p.source) for p in plan]
        nb = nbformat.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        env = _scrubbed_env(workdir / "home", limits.threads)
        sandbox.kernel_ending(workdir)  # forget how the previous kernel ended (stopped by us): this one's is read
        warm = sandbox.zygote(env) if limits.sandbox and limits.prewarm else None
        km = sandbox.kernel_manager(workdir, env, limits, confined=limits.sandbox, zygote=warm)
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
                        problem = (None, "timeout", f"stopped after {limits.submission_timeout:.0f} s, the time limit "
                                                    "of the whole submission, before this exercise ran: make slow "
                                                    "cells faster (print less, no endless loops)")
                        break
                    client.timeout = int(max(1, min(planned.timeout, remaining)))
                    what = _WHAT[planned.kind]
                    try:
                        client.execute_cell(cells[index], index)
                    except CellTimeoutError:
                        problem = (index, "timeout", f"stopped after {client.timeout} s in {what}: look for an "
                                                     "endless loop, or work that grows too fast with the input")
                        break
                    except DeadKernelError:
                        problem = (index, *_death(workdir, limits, what))
                        break
                    if client.over_limit:
                        problem = (index, "output-limit", f"stopped: {what} printed more than "
                                                          f"{limits.output_bytes // 1000} kB: remove prints inside loops")
                        break
                    if planned.kind == "answer" and (error := _cell_error(cells[index])):
                        ran.raised[planned.owner] = error
                    if planned.kind == "harness" and not (outputs / f"{planned.owner}.done.json").exists():
                        problem = (index, "error", "the grader's harness could not run after this answer "
                                                   "(the answer changed how the kernel runs cells): leave IPython's "
                                                   "input transformers, exception handlers and hooks alone")
                        break
        except Exception as err:  # noqa: BLE001 - a kernel that would not start or stop
            if problem is None:
                problem = (None, "crashed", f"the kernel failed ({type(err).__name__}: {str(err)[:120]}); "
                                            "tell your instructor, who can re-grade it")
        finally:
            _shutdown(km)
        if problem is None:
            return ran
        index, status, reason = problem
        owner = plan[index].owner if index is not None else None
        if owner is None:
            owners = [p.owner for p in plan if p.owner and p.owner not in failed]
            for ex in dict.fromkeys(owners):
                if not (outputs / f"{ex}.done.json").exists():
                    failed[ex] = (status, reason)
            return ran
        failed[owner] = (status, reason)
    return ran


def _cell_error(cell) -> str:
    """The last line of the exception a cell raised (``"ValueError: bad shape"``), or ""."""
    from rlcourse.grading.explain import last_line

    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return last_line(f"{output.get('ename', 'Exception')}: {output.get('evalue', '')}")
    return ""


STOP_WAIT = 10.0  # seconds a kernel's launcher gets to kill the kernel and record its end, before it is killed


def _shutdown(km) -> None:
    """Stop the kernel (nbclient leaves a kernel manager it was given running) and wait for its launcher:
    SIGTERM makes the launcher (or a pre-warmed kernel's stub, which asks its launcher) kill the kernel's
    PID namespace and write how it ended into the submission's folder, which is deleted next; only then is
    the kernel manager shut down. A launcher that does not stop in ``STOP_WAIT`` s is killed."""
    import signal

    from jupyter_core.utils import run_sync

    try:
        if run_sync(km.is_alive)():
            run_sync(km.provisioner.send_signal)(signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT
            while run_sync(km.is_alive)() and time.monotonic() < deadline:
                time.sleep(0.02)
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001 - a kernel already gone
        pass


def _death(workdir: Path, limits: Limits, what: str) -> tuple[str, str]:
    """``(status, reason)`` of a kernel that died in ``what``, from how the sandbox launcher saw it end."""
    import signal

    ending = sandbox.kernel_ending(workdir)
    if ending.get("signal") in (signal.SIGXCPU, signal.SIGKILL) and ending.get("cpu_seconds", 0) >= limits.cpu_seconds:
        return "cpu-limit", (f"stopped after {limits.cpu_seconds} s of CPU time in {what}: look for an endless loop, "
                             "or work that grows too fast with the input")
    if ending.get("signal") == signal.SIGXFSZ:
        return "error", (f"stopped: {what} wrote a file past the sandbox's {limits.file_bytes // 1_000_000} MB limit: "
                         "write no files (return results instead)")
    return "crashed", (f"the kernel died in {what} (os._exit or exit(), a crash in native code, or memory past the "
                       f"{limits.memory_bytes / 1e9:g} GB cap): remove exit calls, and run your notebook top to "
                       "bottom in a fresh kernel (Kernel > Restart and Run All)")

_COURSES: dict[tuple, str] = {}  # course.json's text per assignment, kept per grading process (it is the same for all)


def write_course(template: Template, inputs: Path) -> None:
    """``inputs/course.json``: the plain data the kernel's stubs of ``rlcourse`` hand out (computed once per
    grading process and assignment: it depends on no submission)."""
    key = (str(template.path), tuple(template.points))
    if key not in _COURSES:
        _COURSES[key] = json.dumps(_course(template))
    (inputs / "course.json").write_text(_COURSES[key])


def _course(template: Template) -> dict:
    """The shipped policy's folder, the loops configs' defaults and (hw2) the public training pairs, as plain data."""
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
    return course


__all__ = ["Limits", "Ran", "build_plan", "run_plan", "write_course"]
