"""``rlcourse trl-grpo`` under ``accelerate launch``: two processes (DDP over gloo, on the CPU) train as one.

The road to many GPUs (docs/scale.md) is TRL + Accelerate, with no distributed code of the course's
own. This runs the real command in two processes on the tiny model for two steps and reads what
each process says it ended with (``process-<index>.json``, written by ``trl_bridge.run_trl_grpo``).
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rlcourse import cli
from rlcourse.rl import trl_bridge

REPO = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT_S = 300  # ~10-30 s on 2 loaded cores; the margin is for a machine busy with other tests
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it), for the processes' rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(out: Path, port: int, num_processes: int = 2) -> list[str]:
    """``accelerate launch`` of ``rlcourse trl-grpo`` on the tiny model: 2 steps of 2 prompts × 4 generations.

    Accelerate 1.15's ``--cpu`` starts several CPU processes only through ``mpirun``; without it,
    one. ``--multi_gpu`` starts them with ``torch.distributed.run`` instead, and ``--use-cpu``
    (TRL's ``use_cpu``) then puts each on the CPU, where Accelerate picks gloo (multi-CPU DDP).
    """
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(port), "--num_cpu_threads_per_process", "1",
            "-m", "rlcourse.cli", "trl-grpo", "--steps", "2", "--prompts-per-step", "2", "--num-generations", "4",
            "--max-completion-length", "12", "--no-bf16", "--use-cpu", "--out", str(out)]


def run_launch(tmp_path: Path) -> subprocess.CompletedProcess:
    """Run :func:`launch_command` offline in ``tmp_path``; on a timeout, kill the launcher and its workers."""
    env = {**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "hf-home"),  # no user accelerate config is read
           "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = launch_command(tmp_path / "out", free_port())
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher's session: torch.distributed.run and both workers
        proc.communicate()
        pytest.fail(f"accelerate launch did not finish in {LAUNCH_TIMEOUT_S} s: {' '.join(command)}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


@pytest.mark.slow
def test_two_processes_train_the_same_weights_under_accelerate_launch(tmp_path):
    pytest.importorskip("trl", reason="the optional [trl] extra is not installed (make setup installs it)")
    result = run_launch(tmp_path)
    assert result.returncode == 0, f"accelerate launch failed:\n{result.stderr[-3000:]}"
    out = tmp_path / "out"
    records = [json.loads((out / f"process-{i}.json").read_text()) for i in range(2)]  # evidence from each process
    for index, record in enumerate(records):
        assert record["process_index"] == index and record["num_processes"] == 2
        assert record["distributed_type"] == "MULTI_CPU" and record["backend"] == "gloo"
        assert record["global_step"] == 2
        assert record["per_device_train_batch_size"] == 4  # 2 prompts × 4 generations, split over 2 processes
    before, after = {r["weights_sha256_before"] for r in records}, {r["weights_sha256_after"] for r in records}
    assert len(before) == 1 and len(after) == 1, "the two processes ended with different weights: DDP did not sync"
    assert before != after, "the weights did not change: nothing trained"
    from rlcourse.model import loading

    saved, _ = loading.load_policy(out)  # the main process saved the trained model there
    assert trl_bridge.weights_digest(saved) == after.pop()
    assert "2 GRPO step(s) on 2 process(es), 4 completions each per step" in result.stdout
    assert result.stdout.count("saved to") == 1  # printed by the main process only


def test_per_process_batch_splits_the_global_batch():
    assert trl_bridge.per_process_batch(8, 4, num_processes=1) == 32
    assert trl_bridge.per_process_batch(8, 4, num_processes=2) == 16
    assert trl_bridge.per_process_batch(3, 4, num_processes=4) == 3  # groups may span processes: TRL gathers
    with pytest.raises(ValueError, match=r"3 prompts × 4 generations = 12 completions does not split evenly over 5"):
        trl_bridge.per_process_batch(3, 4, num_processes=5)
    with pytest.raises(ValueError, match="num_generations must be at least 2"):
        trl_bridge.per_process_batch(8, 1)


def test_trl_grpo_command_says_in_one_sentence_what_is_wrong(tmp_path, monkeypatch, capsys):
    """Bad input fails before any training, with one sentence and exit status 2 (no accelerate launch needed)."""
    pytest.importorskip("trl", reason="the optional [trl] extra is not installed (make setup installs it)")
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    missing = tmp_path / "no-such-model"
    assert cli.main(["trl-grpo", "--model", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rlcourse trl-grpo: Model '{missing}' is unavailable") and err.count("\n") == 0

    monkeypatch.setenv("WORLD_SIZE", "5")  # as `accelerate launch --num_processes 5` sets it
    assert cli.main(["trl-grpo", "--prompts-per-step", "3", "--num-generations", "4",
                     "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "12 completions does not split evenly over 5 processes" in err and err.count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_trl_bridge_docstring_examples():
    import doctest

    result = doctest.testmod(trl_bridge)
    assert result.attempted >= 1 and result.failed == 0
