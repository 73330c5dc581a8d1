"""The ``rlcourse`` command: ``rlcourse pretrain | pretrain-math | info | notebooks | trl-grpo`` (more subcommands register below)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _pretrain(args: argparse.Namespace) -> int:
    from rlcourse.model import loading, pretraining, runtime

    runtime.quiet()
    out = Path(args.out) if args.out else loading.DEFAULT_MODEL_PATH
    result = pretraining.pretrain(out_dir=out, num_steps=args.steps, seed=args.seed, threads=args.threads)
    print(f"saved to {out}: validation loss {result['val_loss']:.4f} nats/token after {args.steps} steps in {result['seconds']:.0f} s")
    return 0


def _pretrain_math(args: argparse.Namespace) -> int:
    from rlcourse.model import loading, pretraining, runtime

    runtime.quiet()
    out = Path(args.out) if args.out else loading.MATH_MODEL_PATH
    result = pretraining.pretrain_math(out_dir=out, num_steps=args.steps, seed=args.seed, threads=args.threads)
    passes = ", ".join(f"pass@{k} {v:.3f}" for k, v in result["evaluation"]["pass@k"].items())
    print(f"saved to {out}: validation loss {result['val_loss']:.4f} nats/token after {args.steps} steps in "
          f"{result['seconds']:.0f} s; held out: {passes}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from rlcourse.model import loading, pretraining, runtime

    runtime.quiet()
    model, tokenizer = loading.load_policy(args.model)
    counts = loading.count_parameters(model)
    print(f"{args.model or loading.DEFAULT_MODEL_PATH}: {model.config.model_type}, vocabulary {len(tokenizer)}, "
          f"{counts['total']:,} parameters ({counts['weights']:,} weights, {counts['biases']:,} biases)")
    return 0


def _train_reward_model(args: argparse.Namespace) -> int:
    from rlcourse.model import runtime
    from rlcourse.reward import reward_model

    runtime.setup(seed=0, threads=args.threads)
    out = Path(args.out) if args.out else reward_model.TRAINED_RM_PATH
    _, _, figures = reward_model.reproduce_trained_reward_model(out_dir=out)
    print(f"saved to {out}: held-out accuracy {figures['heldout_accuracy']:.3f} "
          f"(noise ceiling {figures['noise_ceiling']:.3f}), Spearman rho {figures['spearman_rho']:.3f}")
    return 0


def _build_exercises(args: argparse.Namespace) -> int:
    from rlcourse.grading.build import build_exercises

    written = build_exercises(Path(args.solutions), Path(args.out))
    print(f"wrote {len(written)} exercise notebooks to {args.out}: {', '.join(p.name for p in written)}")
    return 0


def _build_quizzes(args: argparse.Namespace) -> int:
    from rlcourse.classroom.quizbank import build_bank

    target = build_bank(Path(args.source), Path(args.out))
    print(f"wrote the hashed quiz bank {target} from {args.source}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from rlcourse.model import runtime
    from rlcourse.grading.grader import Limits, grade

    runtime.quiet()  # no "Loading weights" bars between the grading progress bar's updates
    limits = Limits(cell_timeout=args.cell_timeout, submission_timeout=args.submission_timeout,
                    sandbox=not args.no_sandbox, memory_bytes=int(args.memory_gb * 1e9))
    rows = grade(args.assignment, args.submissions, args.out, jobs=args.jobs, seed=args.seed, limits=limits,
                 only=args.only)
    students = sorted({r["student"] for r in rows})
    for student in students:
        mine = [r for r in rows if r["student"] == student]
        print(f"{student}: {sum(r['points'] for r in mine):g} / {sum(r['max'] for r in mine):g}")
    out = Path(args.out)
    print(f"graded {len(students)} submissions (seed {rows[0]['seed'] if rows else '-'}); gradebook "
          f"{out / 'gradebook.csv'}, feedback in {out / 'feedback'}, class summary {out / 'summary.md'} "
          f"and {out / 'scores.png'}")
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from rlcourse.grading.gradescope import build_autograder

    out = args.out or f"{Path(args.assignment).stem}_autograder.zip"
    path = build_autograder(args.assignment, out, sandbox=not args.no_sandbox, visibility=args.visibility,
                            wheel=args.wheel)
    print(f"wrote {path}: upload it as the assignment's autograder on Gradescope (Configure Autograder, zip file)")
    return 0


def _add_grading_commands(sub) -> None:
    """``build-exercises``, ``build-quizzes``, ``grade`` and ``gradescope`` (the homework and quiz tools)."""
    p = sub.add_parser("build-exercises", help="write exercises/ from solutions/ (solution regions become stubs)")
    p.add_argument("--solutions", default="solutions", help="folder of solution notebooks")
    p.add_argument("--out", default="exercises", help="folder for the student notebooks")
    p.set_defaults(func=_build_exercises)

    p = sub.add_parser("build-quizzes", help="write the hashed quiz bank rlcourse/assets/quizzes.json from solutions/quizzes.py")
    p.add_argument("--source", default="solutions/quizzes.py", help="the plain-text quiz source (instructor material)")
    p.add_argument("--out", default=str(Path(__file__).parent / "assets" / "quizzes.json"), help="the bank to write")
    p.set_defaults(func=_build_quizzes)

    p = sub.add_parser("grade", help="grade homework submissions in sandboxed kernels")
    p.add_argument("--assignment", required=True, help="the solution notebook, e.g. solutions/hw1_policy.ipynb")
    p.add_argument("--out", default="grades", help="folder for gradebook.csv and feedback/")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--seed", type=int, default=None, help="the secret seed of the hidden inputs (default: random; "
                                                          "pass the gradebook's seed to re-grade identically)")
    p.add_argument("--cell-timeout", type=float, default=60.0, help="seconds per cell")
    p.add_argument("--submission-timeout", type=float, default=900.0, help="seconds per submission")
    p.add_argument("--memory-gb", type=float, default=3.0, help="address-space cap of each student kernel, in GB")
    p.add_argument("--only", default=None, metavar="STUDENT", help="re-grade only this student's submission (its file "
                   "name without .ipynb) into the existing gradebook, with its seed unless --seed is given; other "
                   "rows stay byte-identical")
    p.add_argument("--no-sandbox", action="store_true", help="grade even where the OS cannot confine student code "
                                                               "(prints a warning; see docs/sandbox.md)")
    p.add_argument("submissions", nargs="+", help="submission .ipynb files or folders of them")
    p.set_defaults(func=_grade)

    p = sub.add_parser("gradescope", help="write a Gradescope autograder zip that grades one notebook as `grade` does")
    p.add_argument("assignment", help="the solution notebook, e.g. solutions/hw1_policy.ipynb")
    p.add_argument("-o", "--out", default=None, help="the zip to write (default: <assignment>_autograder.zip)")
    p.add_argument("--visibility", default="visible", help="when students see the results: visible, hidden, "
                                                           "after_due_date or after_published (Gradescope's values)")
    p.add_argument("--no-sandbox", action="store_true", help="grade unconfined, for a Gradescope image that cannot "
                                                               "confine student code (see docs/sandbox.md)")
    p.add_argument("--wheel", default=None, help="a prebuilt course wheel (default: built from this checkout)")
    p.set_defaults(func=_gradescope)


def _notebooks(args: argparse.Namespace) -> int:
    from rlcourse.classroom.shipping import copy_notebooks

    written = copy_notebooks(args.dir, force=args.force)
    print(f"copied {len(written['notebooks'])} lecture notebooks to {Path(args.dir) / 'notebooks'} and "
          f"{len(written['exercises'])} exercises to {Path(args.dir) / 'exercises'}; open them with "
          f"`jupyter lab {args.dir}`")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rlcourse.classroom.runner import main_run

    return main_run(args.paths, args.out, timeout=args.timeout)


def _trl_grpo(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState

    from rlcourse.model import loading, runtime
    from rlcourse.rl import trl_bridge
    from rlcourse.world import grammar

    runtime.quiet()
    # checked before anything loads: a bad split fails in a second, on every process alike
    per_device = trl_bridge.per_process_batch(args.prompts_per_step, args.num_generations,
                                              trl_bridge.launched_processes())
    model, tokenizer = loading.load_policy(args.model, dtype=getattr(torch, args.dtype))
    prompts = grammar.review_prompts(args.prompts_per_step * args.steps, seed=args.seed)  # one epoch = the run
    log = trl_bridge.run_trl_grpo(model, tokenizer, prompts, max_steps=args.steps, num_generations=args.num_generations,
                                  prompts_per_step=args.prompts_per_step, max_completion_length=args.max_completion_length,
                                  learning_rate=args.lr, beta=args.beta, seed=args.seed, output_dir=args.out,
                                  use_cpu=args.use_cpu, bf16=args.bf16)
    state = PartialState()  # the one the trainer set up: which process this is, and how many there are
    if state.is_main_process:
        print(f"saved to {args.out}: {len(log)} GRPO step(s) on {state.num_processes} process(es), {per_device} "
              f"completions each per step; mean gold reward {log[0]['reward']:.3f} -> {log[-1]['reward']:.3f}; "
              f"each process's weight digests in {Path(args.out) / 'process-*.json'}")
    return 0


def _add_trl_command(sub) -> None:
    """``trl-grpo`` (rlcourse.rl.trl_bridge): TRL's GRPOTrainer with the gold reward, also under ``accelerate launch``."""
    p = sub.add_parser("trl-grpo", help="GRPO with TRL's GRPOTrainer and the gold reward; start it with "
                                        "`accelerate launch -m rlcourse.cli trl-grpo` for several GPUs (docs/scale.md)")
    p.add_argument("--model", default=None, help="HF name or folder (default: the tiny model, offline)")
    p.add_argument("--steps", type=int, default=4, help="optimizer steps")
    p.add_argument("--num-generations", type=int, default=4, help="completions per prompt, G (at least 2)")
    p.add_argument("--prompts-per-step", type=int, default=8, help="prompts per optimizer step over all processes; "
                   "the global batch, prompts × G completions, must split evenly over the processes")
    p.add_argument("--max-completion-length", type=int, default=24, help="tokens per completion at most")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (try 1e-6 for a 0.5B model)")
    p.add_argument("--beta", type=float, default=0.0, help="KL coefficient; > 0 keeps a reference model in memory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="trl-grpo-model", help="folder for the final model and tokenizer "
                   "(written by the main process) and one process-<index>.json per process")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="dtype of the loaded "
                   "weights (float32, TRL's default for a model name; bfloat16 halves the weights' memory)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="TRL's bf16 autocast "
                   "(default: TRL's, on)")
    p.add_argument("--use-cpu", action="store_true", help="train on the CPU even when a GPU is present")
    p.set_defaults(func=_trl_grpo)


def _add_run_command(sub) -> None:
    """``run`` (rlcourse.classroom.runner): execute notebooks headless in course order, print a table."""
    p = sub.add_parser("run", help="execute notebooks headless in course order; print time, peak memory and status")
    p.add_argument("paths", nargs="*", help="notebooks or folders of them (default: notebooks/ then solutions/)")
    p.add_argument("--out", default=None, help="folder for the executed copies (default: a new temporary folder); "
                                               "the sources are never written")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell before a notebook counts as timed out")
    p.set_defaults(func=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlcourse", description="Reinforcement learning for LLMs: the course's tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    # (the defaults of --out are resolved when the command runs: building the parser imports no model code)
    p = sub.add_parser("pretrain", help="reproduce the shipped tiny model from the grammar corpus")
    p.add_argument("--out", default=None, help="output folder (Hugging Face format; default: the shipped model's, "
                   "rlcourse/assets/tiny-gpt)")
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("pretrain-math", help="reproduce the shipped tiny-math model (verifiable rewards) and its pass@k")
    p.add_argument("--out", default=None, help="output folder (Hugging Face format; default: the shipped model's, "
                   "rlcourse/assets/tiny-math)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_pretrain_math)

    p = sub.add_parser("train-reward-model", help="reproduce the shipped reward model of notebook 02")
    p.add_argument("--out", default=None, help="output folder (Hugging Face format; default: the shipped model's, "
                   "rlcourse/assets/tiny-rm)")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_train_reward_model)

    p = sub.add_parser("info", help="load a policy and count its parameters")
    p.add_argument("model", nargs="?", default=None, help="HF name or folder (default: the tiny model)")
    p.set_defaults(func=_info)

    p = sub.add_parser("notebooks", help="copy the lecture notebooks and the exercises into a folder")
    p.add_argument("dir", help="the folder to copy them into (notebooks/ and exercises/ are made inside it)")
    p.add_argument("--force", action="store_true", help="overwrite notebooks already in that folder")
    p.set_defaults(func=_notebooks)
    _add_grading_commands(sub)
    _add_run_command(sub)
    _add_trl_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # user-facing errors are one clear sentence
        print(f"rlcourse {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
