"""The grader's side inside the student's kernel: evaluate the student's functions, write plain numbers.

The grader appends one harness cell per exercise to the rebuilt notebook::

    import rlcourse.grading.kernel as _rlc_kernel
    _rlc_kernel.run("hw1.token_logprobs", globals().get("token_logprobs"), "/tmp/…/work")

``run`` reads the hidden inputs the grader wrote to ``work/inputs/``, calls the student's
function on each case, and writes what came back as float arrays (safetensors), trained
weights (safetensors) or quiz answers (JSON) to ``work/outputs/``. Nothing here decides a
grade: the grader reads the numbers back and compares them with the reference in its own
process, so a student who patches this module can at most lose points.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file, save_model

from rlcourse.grading import spec

MAX_QUIZ_JSON = 10_000  # bytes of quiz answers kept
_MODELS: dict = {}


def _argument(value, tensors: dict):
    if "tensor" in value:
        return tensors[value["tensor"]]
    if "model" in value:
        key = json.dumps(value["model"], sort_keys=True)
        if key not in _MODELS:
            _MODELS[key] = spec.build_model(spec.ModelArg(value["model"]))
        return _MODELS[key]
    return value["value"]


def _run_function(ex_id: str, fn, inputs: Path, outputs: Path) -> dict:
    layout = json.loads((inputs / f"{ex_id}.json").read_text())
    tensors = load_file(inputs / f"{ex_id}.safetensors")
    results, errors = {}, {}
    for i, case in enumerate(layout["cases"]):
        try:
            kwargs = {name: _argument(v, tensors) for name, v in case.items()}
            kwargs = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
            for j, array in enumerate(spec.as_arrays(fn(**kwargs))):
                results[f"c{i}.o{j}"] = array.contiguous()
        except BaseException as err:  # noqa: BLE001 - SystemExit/KeyboardInterrupt of one case costs that case only
            errors[str(i)] = f"{type(err).__name__}: {str(err)[:200]}"
    save_file(results, str(outputs / f"{ex_id}.safetensors"))
    return errors


def _run_train_reward_model(fn, outputs: Path, ex_id: str) -> None:
    from rlcourse import rewards

    rm, tokenizer = rewards.load_reward_model(seed=0)
    pairs = spec.training_pairs()
    fn(rm, tokenizer, pairs)
    save_model(rm, str(outputs / f"{ex_id}.safetensors"))


def _run_train_policy(fn, outputs: Path, ex_id: str) -> None:
    from rlcourse import loops

    config = fn()
    if not isinstance(config, loops.LoopConfig):
        raise TypeError(f"make_config() returned a {type(config).__name__}, not a loops config")
    if config.num_steps > spec.POLICY_TARGET["max_steps"]:
        raise ValueError(f"num_steps {config.num_steps} is above the budget of {spec.POLICY_TARGET['max_steps']}")
    result = loops.train(config, device="cpu", progress=False)
    save_model(result["model"], str(outputs / f"{ex_id}.safetensors"))


def run(exercise_id: str, fn, workdir: str) -> None:
    """Evaluate the student's ``fn`` for ``exercise_id`` on the inputs in ``workdir``; print nothing."""
    ex = spec.exercise(exercise_id)
    inputs, outputs = Path(workdir) / "inputs", Path(workdir) / "outputs"
    status = {"exercise": exercise_id, "errors": {}}
    try:
        if fn is None or not callable(fn):
            status["errors"]["all"] = f"no function named {ex.function} was defined"
        elif ex.kind == "function":
            status["errors"] = _run_function(exercise_id, fn, inputs, outputs)
        elif ex.kind == "quiz":
            text = json.dumps(fn())
            (outputs / f"{exercise_id}.json").write_text(text[:MAX_QUIZ_JSON])
        elif ex.kind == "train_reward_model":
            _run_train_reward_model(fn, outputs, exercise_id)
        elif ex.kind == "train_policy":
            _run_train_policy(fn, outputs, exercise_id)
    except BaseException as err:  # noqa: BLE001 - one exercise's failure is recorded, never raised
        status["errors"]["all"] = f"{type(err).__name__}: {str(err)[:200]}"
    # The marker says the harness ran to the end; it can never earn a point (see grader.py).
    (outputs / f"{exercise_id}.done.json").write_text(json.dumps(status))
    sys.stdout.flush()


def write_inputs(exercise_id: str, cases: list[dict], inputs: Path) -> None:
    """The grader's half: write ``cases`` (kwargs dicts) as safetensors + a JSON layout."""
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


def install_traps(names_by_module: dict[str, list[str]]) -> None:
    """Make the reference functions raise when called from notebook code (not from the package itself).

    A second line of defence behind the static check: an answer that reaches a reference
    function some other way gets an error instead of the answer. Package code (e.g. the
    training loop) still calls them freely.
    """
    import importlib

    for module_name, names in names_by_module.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):
                setattr(module, name, _trap(getattr(module, name), f"{module_name}.{name}"))


def _trap(original, qualified: str):
    def trapped(*args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        # the harness itself (rlcourse.grading.kernel) only ever calls the student's function:
        # an answer that IS the reference, or a partial of it, lands here too
        if not str(caller).startswith("rlcourse") or caller == __name__:
            raise RuntimeError(f"{qualified} is the reference answer; the grader does not let answers call it.")
        return original(*args, **kwargs)

    return trapped
