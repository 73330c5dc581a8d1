"""The full pretraining recipe of the shipped tiny model, re-run: time and final validation loss.

Reads the recipe from rlcourse/assets/tiny-gpt/training_stats.json, runs all its steps with
rlcourse.model.pretraining.pretrain (about 5 minutes on 2 idle cores), and prints the wall-clock time,
the final validation loss against the shipped one and whether it is within 5% (the criterion
the slow test used before it checked only the recorded first steps), and how far the loss
curve of the first steps moved from the recorded one. Floats differ across CPUs and training
amplifies them, so a different final loss within a few percent is expected on another machine.

Writes nothing unless --out names a folder (never the shipped one by default). Prints
figures; asserts nothing. Usage:

    .venv/bin/python benchmarks/pretrain.py [--out DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from rlcourse.model import loading, pretraining, runtime

VAL_LOSS_RTOL = 0.05  # the full run's criterion: final validation loss within 5% of the shipped one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="save the retrained model here (default: keep it in memory)")
    parser.add_argument("--threads", type=int, default=runtime.DEFAULT_THREADS)
    args = parser.parse_args()
    runtime.quiet()
    shipped = json.loads((loading.DEFAULT_MODEL_PATH / "training_stats.json").read_text())
    print(f"load average at start: {os.getloadavg()[0]:.1f} (1 min)", flush=True)
    start = time.perf_counter()
    result = pretraining.pretrain(out_dir=args.out, num_steps=shipped["num_steps"], batch_size=shipped["batch_size"],
                             lr=shipped["lr"], story_fraction=shipped["story_fraction"], seed=shipped["seed"],
                             threads=args.threads, progress=True)
    seconds = time.perf_counter() - start
    print(f"load average at end: {os.getloadavg()[0]:.1f} (1 min)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()}), {args.threads} threads")
    ms_per_step = 1000 * result["seconds"] / shipped["num_steps"]
    print(f"{shipped['num_steps']} steps in {seconds:.0f} s ({ms_per_step:.0f} ms per step)")
    relative = (result["val_loss"] - shipped["val_loss"]) / shipped["val_loss"]
    verdict = "within" if abs(relative) <= VAL_LOSS_RTOL else "NOT within"
    print(f"final validation loss {result['val_loss']:.4f} vs shipped {shipped['val_loss']:.4f} nats/token: "
          f"{relative:+.2%}, {verdict} {VAL_LOSS_RTOL:.0%}")
    curve = shipped.get("loss_curve")
    if curve:
        got = pretraining.loss_curve(result["history"][: curve["steps"]], curve["window"])
        moved = max(abs(g - e) / e for g, e in zip(got, curve["mean_loss"]))
        print(f"loss curve of the first {curve['steps']} steps: largest relative move {moved:.1e} from the record")


if __name__ == "__main__":
    main()
