"""The grader's side inside the student's kernel: evaluate the student's functions, write plain data.

This file is loaded **by path** in the kernel (the sandbox lets the kernel read this one file of
the package and its ``assets/``, not the rest), and it imports nothing from ``rlcourse``: no
object in the kernel can compute a graded answer. The grader's prelude cell runs::

    _rlc_kernel = <this file>
    _rlc_kernel.install_stubs("/tmp/…/work")   # what the template's given cells use, as plain data

and after each answer one harness cell::

    _rlc_kernel.run("hw1.token_logprobs", "function", globals().get("token_logprobs"), "/tmp/…/work")

``run`` reads the hidden inputs the grader wrote to ``work/inputs/``, calls the student's
function, and writes what came back to ``work/outputs/``: float arrays (safetensors), trained
weights (safetensors), quiz answers or a training config (JSON). Nothing here decides a grade:
the grader reads the data back and judges it in its own process, so a student who patches this
module can at most lose points.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import random
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file, save_model

MAX_JSON = 10_000  # bytes of quiz answers or config kept
_MODELS: dict = {}
_COURSE: dict = {}  # inputs/course.json: the shipped model's folder, loops configs, training pairs


# ----------------------------------------------------------------------------- what the template's cells use


def load_course(workdir: str) -> None:
    """Read ``inputs/course.json`` (written by ``execute.write_course``): what the stand-ins below hand out."""
    _COURSE.update(json.loads((Path(workdir) / "inputs" / "course.json").read_text()))


def install_stubs(workdir: str) -> None:
    """Give ``import rlcourse`` (and ``rlcourse.grading``, ``rlcourse.rl.loops``) the few plain things
    the template's given cells use, so the real package (and its references) never loads here.

    Each stand-in rebuilds what the package function it replaces returns, from the same files
    (``tests/test_grading.py`` checks that they agree)."""
    load_course(workdir)
    course = types.ModuleType("rlcourse")
    course.__path__ = []  # a package, so `from rlcourse import grading` finds the stubs below
    course.setup = course.set_seed = _set_seed
    course.load_policy = lambda *a, **k: (_policy(), _tokenizer())
    course.load_tokenizer = lambda *a, **k: _tokenizer()
    grading = types.ModuleType("rlcourse.grading")
    grading.__path__ = []
    grading.quiz = lambda homework: print(f"({homework} quiz: not shown while grading)")
    grading.check = lambda *args, **kwargs: None
    grading.spec = types.ModuleType("rlcourse.grading.spec")
    grading.spec.training_pairs = _training_pairs
    rl = types.ModuleType("rlcourse.rl")
    rl.__path__ = []  # a package, so `from rlcourse.rl import loops` finds the stub below
    loops = types.ModuleType("rlcourse.rl.loops")
    course.grading, course.rl, rl.loops = grading, rl, loops
    sys.modules.update({"rlcourse": course, "rlcourse.grading": grading, "rlcourse.grading.spec": grading.spec,
                        "rlcourse.rl": rl, "rlcourse.rl.loops": loops})
    for name, fields in _COURSE.get("loops", {}).items():
        setattr(loops, name, dataclasses.make_dataclass(
            name, [(f, type(d), dataclasses.field(default=d)) for f, d in fields.items()], frozen=True,
            namespace={"__module__": "rlcourse.rl.loops"}))


def _set_seed(seed: int = 0, threads: int | None = None) -> torch.Generator:
    """``rlcourse.set_seed`` (and ``rlcourse.setup``, whose thread count the grader fixes itself)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _tokenizer():
    """The shipped tokenizer, as ``rlcourse.load_tokenizer()`` sets it up (pads on the left)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_COURSE["policy_path"])
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _policy():
    """The shipped tiny policy, as ``rlcourse.load_policy()`` builds it (same files, same settings)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(_COURSE["policy_path"])
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = _tokenizer().pad_token_id
    return model.eval()


def _reward_model():
    """A reward model as ``rlcourse.reward.reward_model.load_reward_model(seed=0)`` builds it."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = _tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        rm = AutoModelForSequenceClassification.from_pretrained(_COURSE["policy_path"], num_labels=1)
    if rm.config.pad_token_id is None:
        rm.config.pad_token_id = tokenizer.pad_token_id
    return rm.eval(), tokenizer


@dataclasses.dataclass
class Pairs:
    """hw2's public training pairs, as plain lists (the fields of ``reward_model.PreferenceDataset``)."""

    prompts: list
    chosen: list
    rejected: list
    chosen_scores: torch.Tensor
    rejected_scores: torch.Tensor

    def __len__(self) -> int:
        return len(self.chosen)


def _training_pairs() -> Pairs:
    """``rlcourse.grading.spec.training_pairs()``, from the plain lists the grader wrote."""
    p = _COURSE["training_pairs"]
    return Pairs(p["prompts"], p["chosen"], p["rejected"], torch.tensor(p["chosen_scores"]),
                 torch.tensor(p["rejected_scores"]))


# ----------------------------------------------------------------------------- running the student's function


def _argument(value, tensors: dict):
    if "tensor" in value:
        return tensors[value["tensor"]]
    if "model" in value:
        key = json.dumps(value["model"], sort_keys=True)
        if key not in _MODELS:
            _MODELS[key] = _policy() if value["model"] is None else build_llama(value["model"])
        return _MODELS[key]
    return value["value"]


def build_llama(config: dict):
    """A fresh Llama from a config, its weights drawn from seed 0 (the grader's ``spec.build_model`` calls this too)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(**config)).eval()


def as_arrays(value) -> list[torch.Tensor]:
    """A result as float64 tensors (tuple/list -> several, number -> 0-dim); TypeError for anything else."""
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    arrays = []
    for item in items:
        if isinstance(item, torch.Tensor):
            arrays.append(torch.Tensor.detach(item).cpu().to(torch.float64).clone())
        elif isinstance(item, numbers.Real):
            arrays.append(torch.tensor(float(item), dtype=torch.float64))
        elif type(item).__module__ == "numpy" and type(item).__name__ == "ndarray":
            arrays.append(torch.from_numpy(item.astype("float64", copy=True)))
        else:
            raise TypeError(f"returned a {type(item).__name__}, expected a tensor or a number")
    return arrays


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:200]}"


def _run_function(ex_id: str, fn, inputs: Path, outputs: Path) -> dict:
    layout = json.loads((inputs / f"{ex_id}.json").read_text())
    tensors = load_file(inputs / f"{ex_id}.safetensors")
    results, errors = {}, {}
    for i, case in enumerate(layout["cases"]):
        try:
            kwargs = {name: _argument(v, tensors) for name, v in case.items()}
            kwargs = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
            for j, array in enumerate(as_arrays(fn(**kwargs))):
                results[f"c{i}.o{j}"] = array.contiguous()
        except BaseException as err:  # noqa: BLE001 - SystemExit/KeyboardInterrupt of one case costs that case only
            errors[str(i)] = _error(err)
    save_file(results, str(outputs / f"{ex_id}.safetensors"))
    return errors


def _run_quiz(ex_id: str, fn, inputs: Path, outputs: Path) -> dict:
    (outputs / f"{ex_id}.json").write_text(json.dumps(fn())[:MAX_JSON])
    return {}


def _run_train_reward_model(ex_id: str, fn, inputs: Path, outputs: Path) -> dict:
    rm, tokenizer = _reward_model()
    fn(rm, tokenizer, _training_pairs())
    save_model(rm, str(outputs / f"{ex_id}.safetensors"))
    return {}


def _run_train_policy(ex_id: str, fn, inputs: Path, outputs: Path) -> dict:
    """The config is data: its class name and fields go back; the grader trains from them."""
    config = fn()
    if not dataclasses.is_dataclass(config) or type(config).__name__ not in _COURSE.get("loops", {}):
        raise TypeError(f"make_config() returned a {type(config).__name__}, not a loops config")
    text = json.dumps({"class": type(config).__name__, "fields": dataclasses.asdict(config)})
    (outputs / f"{ex_id}.json").write_text(text[:MAX_JSON])
    return {}


# one runner per exercise kind (the grader's half of each kind is in grading/kinds.py, which this file cannot import)
RUNNERS = {"function": _run_function, "quiz": _run_quiz, "train_reward_model": _run_train_reward_model,
           "train_policy": _run_train_policy}


def run(exercise_id: str, kind: str, fn, workdir: str) -> None:
    """Evaluate the student's ``fn`` for ``exercise_id`` (of ``kind``) on the inputs in ``workdir``."""
    inputs, outputs = Path(workdir) / "inputs", Path(workdir) / "outputs"
    status = {"exercise": exercise_id, "errors": {}}
    try:
        if fn is None or not callable(fn):
            status["errors"]["all"] = "no function was defined"
        else:
            if kind not in RUNNERS:
                raise ValueError(f"unknown exercise kind {kind!r}; the harness runs: {', '.join(RUNNERS)}")
            status["errors"] = RUNNERS[kind](exercise_id, fn, inputs, outputs)
    except BaseException as err:  # noqa: BLE001 - one exercise's failure is recorded, never raised
        status["errors"]["all"] = _error(err)
    # The marker says the harness ran to the end; it can never earn a point (see grader.py).
    (outputs / f"{exercise_id}.done.json").write_text(json.dumps(status))
    sys.stdout.flush()
