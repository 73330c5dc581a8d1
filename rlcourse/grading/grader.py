"""``rlcourse grade``: grade homework submissions fairly, trusting nothing the student's kernel says.

For each submission (in its own worker process when ``jobs > 1``):

1. **Validate** the file with ``nbformat``: not JSON, truncated, not nbformat 4 or not a
   valid notebook -> every exercise scores 0 with that reason; the batch goes on.
2. **Rebuild** the notebook from the instructor's template (the solution notebook): only
   the student's answer cells are taken, matched by ``metadata["rlcourse"]["exercise"]``
   (or, failing that, by the cell id of the released exercise cell). Everything else the
   student sent (other cells, tags, metadata, outputs, edited check cells) is dropped;
   a deleted answer scores 0, a duplicated one is reported and the last copy is graded.
3. **Static check** each answer (:mod:`rlcourse.grading.static`): an answer that calls or
   imports the reference, or reaches for files, ``exec`` or the kernel, is flagged, scores
   0 and is not run. A courtesy for honest mistakes; the sandbox is the defence.
4. **Execute** in a fresh Jupyter kernel (nbclient) confined by the operating system
   (:mod:`rlcourse.grading.sandbox`, docs/sandbox.md: Landlock, namespaces, seccomp, rlimits),
   with a scrubbed environment, a temporary working directory, a per-cell and a per-submission
   time limit and an output cap. The kernel never loads ``rlcourse``: a prelude loads the
   harness (:mod:`rlcourse.grading.kernel`) by path and gives the template's cells stubs made
   of plain data. After each answer a harness cell evaluates the student's function on inputs
   drawn from the secret per-run seed and writes plain data. A cell that hangs, kills the kernel, floods output or stops the
   harness from running costs its exercise only: the run restarts in a new kernel without it.
5. **Decide** in this process: the numbers are compared with the reference computed here;
   trained weights are loaded here and measured with the gold reward here.

Outputs: ``gradebook.csv`` (merged with an existing one, written atomically) and
``feedback/<student>.md`` (points and a hint per exercise; never hidden inputs or values).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from rlcourse.grading import sandbox, spec, static
from rlcourse.grading.build import answer_cells

# `isolation` came last, so readers of the older columns keep working
GRADEBOOK_COLUMNS = ["student", "exercise", "points", "max", "status", "reason", "sha256", "seed", "grader_version",
                     "isolation"]
MAX_NOTEBOOK_BYTES = 20_000_000
MAX_RESULT_BYTES = 50_000_000


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


@dataclass
class Row:
    student: str
    exercise: str
    points: float
    max: float
    status: str  # "ok" | "wrong" | "error" | "missing" | "flagged" | "timeout" | "crashed" | "output-limit" | "invalid"
    # | "memory-limit" | "process-limit" | "cpu-limit"
    reason: str
    sha256: str
    seed: int
    grader_version: str
    isolation: str  # sandbox.ISOLATION, or sandbox.NO_ISOLATION under --no-sandbox


@dataclass
class Template:
    """The instructor's notebook: its cells and graded exercises (id -> points)."""

    path: Path
    nb: nbformat.NotebookNode
    points: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Template":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"the assignment {path} does not exist; pass a solution notebook, e.g. solutions/hw1_policy.ipynb.")
        nb = nbformat.read(path, as_version=4)
        points = {}
        for exercise_id, cells in answer_cells(nb).items():
            spec.exercise(exercise_id)  # unknown ids fail loudly
            if len(cells) != 1:
                raise ValueError(f"the assignment {path} has {len(cells)} answer cells for {exercise_id}; it needs exactly one.")
            points[exercise_id] = float(nb.cells[cells[0]].metadata["rlcourse"].get("points", 1))
        if not points:
            raise ValueError(f"the assignment {path} has no answer cells (metadata rlcourse.role == 'answer'); "
                             "pass a solution notebook from solutions/.")
        return cls(path, nb, points)


# ----------------------------------------------------------------------------- reading a submission


def read_submission(data: bytes) -> tuple[nbformat.NotebookNode | None, str]:
    """``(notebook, "")`` or ``(None, reason)`` for a file that is not a valid nbformat-4 notebook."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, f"the file is {len(data) / 1e6:.0f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB limit; clear outputs and resubmit"
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the file is not UTF-8 text, so not a notebook; submit the .ipynb saved by Jupyter"
    except json.JSONDecodeError as err:
        return None, (f"the file is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); it may be "
                      "truncated or damaged: save it again in Jupyter and resubmit")
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, "the file is JSON but not a notebook (no 'nbformat' field); submit the .ipynb saved by Jupyter"
    if raw.get("nbformat") != 4:
        return None, (f"the notebook is nbformat version {raw.get('nbformat')}, expected 4; open it in a current "
                      "Jupyter and save it, or convert it with `jupyter nbconvert --to notebook`")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - nbformat raises several types
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        return None, f"the notebook does not follow nbformat 4 ({first}); save it again in Jupyter and resubmit"
    return nb, ""


def student_answers(nb: nbformat.NotebookNode, template: Template) -> tuple[dict[str, str], dict[str, str]]:
    """``(exercise -> answer source, exercise -> note)`` from a student's notebook.

    Matched by the ``rlcourse`` metadata, else by the released cell's id. A duplicate is
    noted and its last copy kept.
    """
    by_meta: dict[str, list[str]] = {}
    by_id: dict[str, list[str]] = {}
    template_ids = {template.nb.cells[i].get("id"): ex for ex, cells in answer_cells(template.nb).items() for i in cells}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("rlcourse")
        if isinstance(meta, dict) and meta.get("role") == "answer" and meta.get("exercise") in template.points:
            by_meta.setdefault(meta["exercise"], []).append(cell.source)
        elif cell.get("id") in template_ids:
            by_id.setdefault(template_ids[cell["id"]], []).append(cell.source)
    answers, notes = {}, {}
    for ex in template.points:
        sources = by_meta.get(ex) or by_id.get(ex) or []
        if len(sources) > 1:
            notes[ex] = f"{len(sources)} answer cells for this exercise; the last one was graded"
        if sources:
            answers[ex] = sources[-1]
    return answers, notes


# ----------------------------------------------------------------------------- the sandbox


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
            timeout = spec_ex.time_limit if spec_ex.kind.startswith("train") else limits.cell_timeout
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


# ----------------------------------------------------------------------------- inputs (grader process)


def write_inputs(exercise_id: str, cases: list[dict], inputs: Path) -> None:
    """Write ``cases`` (kwargs dicts) as safetensors + a JSON layout; models as plain descriptions."""
    from safetensors.torch import save_file
    import torch

    tensors, layout = {}, []
    for i, case in enumerate(cases):
        entry = {}
        for name, value in case.items():
            if isinstance(value, torch.Tensor):
                tensors[f"c{i}.{name}"] = value.contiguous()
                entry[name] = {"tensor": f"c{i}.{name}"}
            elif isinstance(value, spec.ModelArg):
                entry[name] = {"model": value.config}
            else:
                entry[name] = {"value": value}
        layout.append(entry)
    save_file(tensors, str(inputs / f"{exercise_id}.safetensors"))
    (inputs / f"{exercise_id}.json").write_text(json.dumps({"cases": layout}))


def write_course(template: Template, inputs: Path) -> None:
    """``inputs/course.json``: the plain data the kernel's stubs of ``rlcourse`` hand out."""
    import dataclasses

    from rlcourse import loops, models

    configs = {name: {f.name: f.default for f in dataclasses.fields(cls)}
               for name, cls in vars(loops).items()
               if isinstance(cls, type) and issubclass(cls, loops.LoopConfig) and dataclasses.is_dataclass(cls)}
    course = {"policy_path": str(models.DEFAULT_MODEL_PATH), "loops": configs}
    if any(spec.homework_of(ex) == "hw2" for ex in template.points):
        pairs = spec.training_pairs()
        course["training_pairs"] = {"prompts": pairs.prompts, "chosen": pairs.chosen, "rejected": pairs.rejected,
                                    "chosen_scores": pairs.chosen_scores.tolist(),
                                    "rejected_scores": pairs.rejected_scores.tolist()}
    (inputs / "course.json").write_text(json.dumps(course))


# ----------------------------------------------------------------------------- verdicts (grader process)

_CACHE: dict = {}


def _model_for(arg: spec.ModelArg):
    key = json.dumps(arg.config, sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = spec.build_model(arg)
    return _CACHE[key]


def _load_result(path: Path):
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise ValueError("the result file is too large")
    return load_file(str(path))


def verdict_function(ex: spec.Exercise, cases: list[dict], outputs: Path) -> tuple[bool, str]:
    """Compare the kernel's numbers with the reference, case by case; ``(passed, reason)``."""
    import torch

    done = json.loads((outputs / f"{ex.id}.done.json").read_text() or "{}")
    errors = done.get("errors", {}) if isinstance(done, dict) else {}
    results = _load_result(outputs / f"{ex.id}.safetensors") or {}
    for i, case in enumerate(cases):
        kwargs = {k: (_model_for(v) if isinstance(v, spec.ModelArg) else v.clone() if isinstance(v, torch.Tensor) else v)
                  for k, v in case.items()}
        expected = spec.as_arrays(ex.reference(**kwargs))
        actual = []
        for j in range(len(expected) + 1):
            if f"c{i}.o{j}" in results:
                actual.append(results[f"c{i}.o{j}"])
        if not actual:
            error = str(errors.get(str(i), errors.get("all", "no result")))
            kind = error.split(":")[0]
            if kind == "NotImplementedError":
                return False, "not implemented yet"
            if limit := _limit_reason(error):
                return False, f"hidden case {i + 1}: {limit}"
            # only the exception's type is shown: its message is the student's text and may quote hidden inputs
            if kind == "no result":
                return False, f"hidden case {i + 1}: no result"
            extra = " or returned something that is not a tensor or a number" if kind == "TypeError" else ""
            return False, f"hidden case {i + 1}: no result (the call raised {kind}{extra})"
        problem = spec.compare(actual, expected, ex.rtol, ex.atol)
        if problem:
            return False, f"hidden case {i + 1}: {problem}"
    return True, f"all {len(cases)} hidden cases match the reference"


MEMORY_REASON = "ran out of memory (the sandbox's memory cap)"
PROCESS_REASON = "tried to start a process (the sandbox allows none)"


def _limit_reason(error: str) -> str | None:
    """The sandbox limit an error shows (the kernel's text only labels a zero; it never earns a point)."""
    if error.startswith("MemoryError") or "can't allocate memory" in error or "Cannot allocate memory" in error:
        return MEMORY_REASON
    if error.startswith("BlockingIOError") and "Resource temporarily unavailable" in error:
        return PROCESS_REASON
    return None


def status_word(ok: bool, reason: str) -> str:
    """A verdict's gradebook status."""
    if ok:
        return "ok"
    if reason == "not implemented yet":
        return "not-implemented"
    return "memory-limit" if MEMORY_REASON in reason else "process-limit" if PROCESS_REASON in reason else "wrong"


def _no_result_reason(outputs: Path, ex: spec.Exercise, default: str) -> str:
    """'not implemented yet' when the harness saw NotImplementedError, else ``default`` (kernel text is only a hint)."""
    try:
        done = json.loads((outputs / f"{ex.id}.done.json").read_text(encoding="utf-8"))
        error = str(done.get("errors", {}).get("all", ""))
    except (OSError, ValueError, AttributeError):
        error = ""
    if error.startswith("NotImplementedError"):
        return "not implemented yet"
    return _limit_reason(error) or default


def verdict_quiz(ex: spec.Exercise, outputs: Path) -> tuple[float, str]:
    path = outputs / f"{ex.id}.json"
    if not path.is_file():
        return 0.0, _no_result_reason(outputs, ex, "no answers (quiz_answers() raised or did not return)")
    try:
        answers = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return 0.0, "the answers were not plain JSON values"
    correct, total, problem = spec._quiz_points(spec.homework_of(ex.id), answers)
    return correct / total, problem or f"{correct} of {total} questions right"


def verdict_reward_model(ex: spec.Exercise, outputs: Path, seed: int) -> tuple[bool, str]:
    from safetensors.torch import load_model

    from rlcourse import rewards
    from rlcourse.grading.checks import held_out_accuracy

    path = outputs / f"{ex.id}.safetensors"
    if not path.is_file():
        return False, _no_result_reason(outputs, ex, "no trained reward model was saved (training raised or did not finish)")
    rm, tokenizer = rewards.load_reward_model(seed=0)
    load_model(rm, str(path), strict=True)
    accuracy = held_out_accuracy(rm, tokenizer, seed)
    ok = accuracy >= spec.RM_ACCURACY
    return ok, f"held-out accuracy {accuracy:.2f} ({'≥' if ok else '<'} {spec.RM_ACCURACY:.2f} needed)"


POLICY_BUDGET = {"num_prompts": 16, "group_size": 8, "max_new_tokens": 32, "num_epochs": 4, "num_minibatches": 8}


def policy_config(data):
    """The real loops config from the plain data the kernel wrote (class name and fields); ValueError
    with one sentence when it is not a config within the budget. The grader trains from it."""
    from rlcourse import loops

    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ValueError("make_config() did not return a loops config")
    cls = getattr(loops, str(data.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, loops.LoopConfig)):
        raise ValueError(f"make_config() returned a {data.get('class')!r}, not a loops config")
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    fields = data["fields"]
    for name, value in fields.items():
        if name not in defaults or type(value) is not type(defaults[name]):
            raise ValueError(f"make_config()'s field {name!r} is not a {cls.__name__} field of the right type")
    config = cls(**fields)
    if config.num_steps > spec.POLICY_TARGET["max_steps"]:
        raise ValueError(f"num_steps {config.num_steps} is above the budget of {spec.POLICY_TARGET['max_steps']}")
    for name, most in POLICY_BUDGET.items():
        if getattr(config, name) > most:
            raise ValueError(f"{name} {getattr(config, name)} is above the grader's budget of {most}")
    return config


def verdict_policy(ex: spec.Exercise, outputs: Path, seed: int) -> tuple[bool, str]:
    """Train from the student's config **here** (plain data; the kernel never holds the loops), then measure."""
    import math

    from rlcourse import loops
    from rlcourse.grading.checks import one_thread, policy_outcome

    path = outputs / f"{ex.id}.json"
    if not path.is_file():
        return False, _no_result_reason(outputs, ex, "no config came back (make_config() raised or returned something else)")
    try:
        config = policy_config(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as err:
        return False, str(err)
    with one_thread():
        result = loops.train(config, device="cpu", progress=False)
        outcome = policy_outcome(result["model"].eval(), result["tokenizer"], seed)
    target = spec.POLICY_TARGET
    ok = (math.isfinite(outcome["gold_reward"]) and outcome["gold_reward"] >= target["gold_reward"]
          and outcome["kl"] <= target["max_kl"])
    return ok, (f"gold reward {outcome['gold_reward']:.2f} (need ≥ {target['gold_reward']:.2f}), "
                f"KL {outcome['kl']:.1f} nats (need ≤ {target['max_kl']:.0f}) on hidden prompts")


# ----------------------------------------------------------------------------- one submission


def grade_one(template_path: str, submission: str, seed: int, limits: Limits, version: str) -> tuple[list[dict], str]:
    """Grade one submission; returns (gradebook rows as dicts, feedback Markdown). Never raises for a bad submission."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(limits.threads)
    try:
        return _grade_one(template_path, submission, seed, limits, version)
    finally:
        torch.set_num_threads(threads)  # the caller's thread count (it changes the last bits of its results)


def _grade_one(template_path: str, submission: str, seed: int, limits: Limits, version: str) -> tuple[list[dict], str]:
    from rlcourse import utils

    utils.quiet()  # in a pool worker too: no library progress bars between the grader's own
    template = Template.load(Path(template_path))
    path = Path(submission)
    student = path.stem
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()

    isolation = sandbox.ISOLATION if limits.sandbox else sandbox.NO_ISOLATION

    def row(ex: str, points: float, status: str, reason: str) -> Row:
        return Row(student, ex, round(points, 2), template.points[ex], status, reason, digest, seed, version, isolation)

    nb, problem = read_submission(data)
    if nb is None:
        rows = [row(ex, 0.0, "invalid", problem) for ex in template.points]
        return [asdict(r) for r in rows], feedback_markdown(student, rows, {}, problem)
    answers, notes = student_answers(nb, template)
    status: dict[str, tuple[str, str]] = {}
    for ex in template.points:
        if ex not in answers:
            status[ex] = ("missing", "answer cell not found (deleted, or its metadata changed): copy it back from the "
                                     "released exercise notebook")
        elif limits.static_check and (problems := static.answer_problems(answers[ex], spec.exercise(ex))):
            status[ex] = ("flagged", "; ".join(problems) + " (no credit)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rlcourse-grade-") as tmp:
        workdir = Path(tmp) / "work"
        for sub in ("inputs", "outputs", "home", "home/tmp"):
            (workdir / sub).mkdir(parents=True)
        write_course(template, workdir / "inputs")
        cases = {}
        for ex in template.points:
            spec_ex = spec.exercise(ex)
            if spec_ex.kind == "function":
                cases[ex] = spec.draw_cases(spec_ex, seed, public=False)
                write_inputs(ex, cases[ex], workdir / "inputs")
        runnable = {ex for ex in template.points if ex not in status}
        failed = {}
        if runnable:
            failed = run_plan(build_plan(template, answers, set(status), workdir, limits), workdir, limits)
        outputs = workdir / "outputs"
        for ex, max_points in template.points.items():
            spec_ex = spec.exercise(ex)
            if ex in status:
                rows.append(row(ex, 0.0, *status[ex]))
                continue
            if ex in failed:
                kind, _, why = failed[ex].partition(": ")
                rows.append(row(ex, 0.0, kind, why))
                continue
            try:
                if spec_ex.kind == "function":
                    ok, reason = verdict_function(spec_ex, cases[ex], outputs)
                    fraction = float(ok)
                elif spec_ex.kind == "quiz":
                    fraction, reason = verdict_quiz(spec_ex, outputs)
                    ok = fraction == 1.0
                elif spec_ex.kind == "train_reward_model":
                    ok, reason = verdict_reward_model(spec_ex, outputs, seed)
                    fraction = float(ok)
                else:
                    ok, reason = verdict_policy(spec_ex, outputs, seed)
                    fraction = float(ok)
            except Exception as err:  # noqa: BLE001 - unreadable results are the submission's problem
                ok, fraction, reason = False, 0.0, f"the results could not be read back ({type(err).__name__})"
            rows.append(row(ex, fraction * max_points, status_word(ok, reason), reason))
    return [asdict(r) for r in rows], feedback_markdown(student, rows, notes, "")


# ----------------------------------------------------------------------------- feedback and gradebook


def feedback_markdown(student: str, rows: list[Row], notes: dict[str, str], problem: str) -> str:
    """One student's feedback: total, then per exercise points, status, reason and a hint (no hidden values)."""
    total, maximum = sum(r.points for r in rows), sum(r.max for r in rows)
    lines = [f"# Feedback for {student}", "", f"**Total: {total:g} / {maximum:g} points**", ""]
    if problem:
        lines += [f"Your file could not be graded: {problem}.", ""]
    lines += ["| exercise | points | status | what the grader found |", "|---|---|---|---|"]
    for r in rows:
        reason = r.reason + (f" ({notes[r.exercise]})" if r.exercise in notes else "")
        lines.append(f"| {r.exercise} | {r.points:g} / {r.max:g} | {r.status} | {reason.replace('|', '/')} |")
    hints = [(r.exercise, spec.exercise(r.exercise).hint) for r in rows if r.points < r.max and r.status != "invalid"]
    if hints:
        lines += ["", "## Hints", ""] + [f"- **{ex}**: {hint}" for ex, hint in hints]
    return "\n".join(lines) + "\n"


def read_gradebook(path: Path) -> list[dict]:
    """The rows of an existing gradebook (an empty list when there is none)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        first = GRADEBOOK_COLUMNS[:9]  # a gradebook from before the `isolation` column is read too
        if reader.fieldnames is None or reader.fieldnames[: len(first)] != first:
            raise ValueError(f"{path} exists but is not a gradebook (its columns are {reader.fieldnames}); "
                             "move it away or pass another --out folder.")
        return list(reader)


def write_gradebook(path: Path, rows: list[dict]) -> None:
    """Merge ``rows`` into the gradebook at ``path`` (a new grade replaces the old one of the same student
    and exercise; every other row is kept), written to a temporary file and renamed."""
    merged = {(r["student"], r["exercise"]): r for r in read_gradebook(path)}
    merged.update({(r["student"], r["exercise"]): r for r in rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=GRADEBOOK_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for key in sorted(merged):
        writer.writerow(merged[key])
    fd, tmp = tempfile.mkstemp(prefix=".gradebook-", suffix=".csv", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
    os.replace(tmp, path)


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _grader_failure(template_path: str, submission: str, seed: int, version: str, err: Exception) -> tuple[list[dict], str]:
    """Rows for a submission the grader itself failed on: status "error", 0 points, the instructor can re-grade it."""
    template = Template.load(Path(template_path))
    path = Path(submission)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    reason = f"the grader failed on this file ({type(err).__name__}: {str(err)[:150]}); re-grade it or grade it by hand"
    rows = [Row(path.stem, ex, 0.0, points, "error", reason, digest, seed, version, "") for ex, points in template.points.items()]
    return [asdict(r) for r in rows], feedback_markdown(path.stem, rows, {}, reason)


def collect_submissions(paths: list[str | Path]) -> list[Path]:
    """Submission files from files and folders (a folder's ``*.ipynb``); one clear sentence on a problem."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.glob("*.ipynb") if q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise ValueError(f"{p} is neither a notebook file nor a folder; pass submission .ipynb files or a folder of them.")
    if not found:
        raise ValueError("no submissions found; pass .ipynb files or a folder that holds them.")
    stems = [p.stem for p in found]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ValueError(f"two submissions share the student name {duplicates[0]!r} (the file name without .ipynb); rename one.")
    return found


def grade(assignment: str | Path, submissions: list[str | Path], out: str | Path, jobs: int = 1, seed: int | None = None,
          limits: Limits = Limits(), progress: bool = True) -> list[dict]:
    """Grade every submission; write ``out/gradebook.csv`` and ``out/feedback/<student>.md``; return the new rows."""
    from tqdm.auto import tqdm

    from rlcourse.grading import GRADER_VERSION

    Template.load(Path(assignment))  # a broken assignment fails before any work
    if limits.sandbox:
        sandbox.require()  # one sentence, before any work, when this machine cannot confine kernels
    else:
        print("warning: grading WITHOUT a sandbox (--no-sandbox): student code can read and write what the grader "
              "can, and reach the network.", file=sys.stderr)
    files = collect_submissions(submissions)
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    gradebook = out / "gradebook.csv"
    read_gradebook(gradebook)  # refuse to touch a file that is not a gradebook
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}.")
    all_rows: list[dict] = []
    bar = tqdm(total=len(files), desc="grading", unit="submission", disable=not progress)

    def record(rows: list[dict], feedback: str, student: str) -> None:
        all_rows.extend(rows)
        write_gradebook(gradebook, rows)  # after every submission: an interrupted batch keeps what it graded
        _write_text_atomic(out / "feedback" / f"{student}.md", feedback)
        bar.update(1)

    args = [(str(assignment), str(f), seed, limits, GRADER_VERSION) for f in files]
    if jobs == 1:
        for a in args:
            try:
                rows, feedback = grade_one(*a)
            except Exception as err:  # noqa: BLE001 - a grader failure on one file must not end the batch
                rows, feedback = _grader_failure(a[0], a[1], a[2], a[4], err)
            record(rows, feedback, Path(a[1]).stem)
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(grade_one, *a): a for a in args}
            for future in as_completed(futures):
                a = futures[future]
                try:
                    rows, feedback = future.result()
                except Exception as err:  # noqa: BLE001 - a grader failure on one file must not end the batch
                    rows, feedback = _grader_failure(a[0], a[1], a[2], a[4], err)
                record(rows, feedback, Path(a[1]).stem)
    bar.close()
    return all_rows


__all__ = ["grade", "grade_one", "Limits", "Template", "read_submission", "student_answers", "write_gradebook",
           "read_gradebook", "GRADEBOOK_COLUMNS", "shutil"]
