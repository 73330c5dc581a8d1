"""The sandbox against a determined student: one forged submission per class of attack.

Each submission is hw3's solution with one answer replaced by an attack; the static check is
off, so what stops the attack is the operating system (docs/sandbox.md). Every attack scores 0
for the exercise it attacks, every other exercise of that submission gets full marks, and
nothing is written outside the kernel's working folder. All submissions are graded in one
batch (two workers), so a failure in one cannot hide behind another's.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from rlcourse.grading import grader, sandbox
from test_grading import HW3, ROOT, grades_of, solution_source, submit

pytestmark = pytest.mark.skipif(sandbox.problem() is not None, reason=f"no sandbox here: {sandbox.problem()}")

FULL = {"hw3.discounted_returns": (2.0, "ok"), "hw3.kl_penalized_rewards": (2.0, "ok"), "hw3.gae": (3.0, "ok"),
        "hw3.quiz": (3.0, "ok")}
GAE = "def gae(rewards, values, mask, gamma, lam):\n"


def attacks(tmp_path: Path, port: int) -> dict[str, tuple[str, str]]:
    """student -> (attacked exercise, answer source)."""
    outside = tmp_path / "outside"
    secret = tmp_path / "secret-quiz.json"
    return {
        "strings": ("hw3.gae", GAE + "    import torch\n    importer = getattr(__builtins__, '__imp' + 'ort__') if hasattr("
                    "__builtins__, '__import__') else __builtins__['__imp' + 'ort__']\n"
                    "    return importer('rlcourse.adv' + 'antages', fromlist=['x']).gae(rewards, values, mask, gamma, lam)"),
        "sysmodules": ("hw3.gae", GAE + "    import torch\n    modules = getattr(torch, 'sy' + 's').modules\n"
                       "    return modules['rlcourse.rl.advantages'].gae(rewards, values, mask, gamma, lam)"),
        "closures": ("hw3.gae", GAE + "    import gc\n    found = [f for f in gc.get_objects() if callable(f) and getattr(f, '__name__', '') == 'gae'"
                     " and str(getattr(f, '__module__', '')).startswith('rlcourse')]\n"
                     "    for f in list(found):\n        found += [c.cell_contents for c in (getattr(f, '__clo' + 'sure__') or ())]\n"
                     "    return found[-1](rewards, values, mask, gamma, lam)"),
        "tables": ("hw3.gae", GAE + "    import importlib, sys\n    sys.modules.pop('rlcourse', None)\n"
                   "    spec = importlib.import_module('rlcourse.grading.spec')\n"
                   "    return spec.EXERCISES['hw3.gae'].reference(rewards=rewards, values=values, mask=mask, gamma=gamma, lam=lam)"),
        "fileio": ("hw3.gae", GAE + f"    import numpy, torch\n    numpy.zeros(3).tofile({str(outside / 'numpy.bin')!r})\n"
                   f"    torch.save(torch.zeros(3), {str(outside / 'torch.pt')!r})\n"
                   f"    numpy.fromfile({str(ROOT / 'solutions' / 'hw3_credit_assignment.ipynb')!r}, dtype='uint8')\n"
                   "    return rewards, values"),
        "proc": ("hw3.gae", GAE + f"    print(open('/proc/{os.getpid()}/cmdline').read())\n    return rewards, values"),
        "socket": ("hw3.gae", GAE + f"    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                   "    return rewards, values"),
        "memory": ("hw3.gae", GAE + "    import torch\n    hog = torch.ones(30_000_000_000, dtype=torch.uint8)\n    return rewards, values"),
        "memorycell": ("hw3.discounted_returns", "import torch\n\nhog = torch.ones(30_000_000_000, dtype=torch.uint8)\n\n"
                       + solution_source("hw3.discounted_returns")),
        "forkbomb": ("hw3.gae", GAE + "    import os\n    while True:\n        os.fork()"),
        "openfile": ("hw3.quiz", f"import json\n\ndef quiz_answers():\n    return json.load(open({str(secret)!r}))"),
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every attack in one batch; return (rows, its folder, whether the socket listener saw a connection)."""
    tmp_path = tmp_path_factory.mktemp("sandbox")
    (tmp_path / "outside").mkdir()
    (tmp_path / "secret-quiz.json").write_text(json.dumps({  # the right answers: only the sandbox stops them
        "q1": "the final score (plus the KL terms after it)", "q2": "the one-step TD residual δ_t", "q3": {
            "Monte-Carlo return": "unbiased, high variance", "TD residual": "biased by the critic, low variance"}}))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    solutions = {ex: solution_source(ex) for ex in FULL}
    paths = [submit(tmp_path, student, {**solutions, ex: source})
             for student, (ex, source) in attacks(tmp_path, listener.getsockname()[1]).items()]
    limits = grader.Limits(cell_timeout=30, submission_timeout=300, static_check=False)
    rows = grader.grade(HW3, paths, tmp_path / "grades", jobs=2, seed=1234, limits=limits, progress=False)
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    listener.close()
    return rows, tmp_path, connected


def _check(batch, student: str, exercise: str, status: str | None = None) -> None:
    rows, tmp_path, _ = batch
    grades = grades_of(rows, student)
    assert grades[exercise][0] == 0.0, (student, grades)
    if status:
        assert grades[exercise][1] == status, (student, grades)
    assert {ex: g for ex, g in grades.items() if ex != exercise} == {ex: g for ex, g in FULL.items() if ex != exercise}
    assert not list((tmp_path / "outside").iterdir())  # nothing written outside the working folder
    assert {r["isolation"] for r in rows if r["student"] == student} == {sandbox.ISOLATION}


def test_names_built_from_strings(batch):
    _check(batch, "strings", "hw3.gae")


def test_sys_modules_lookup(batch):
    _check(batch, "sysmodules", "hw3.gae")


def test_closures_and_function_internals(batch):
    _check(batch, "closures", "hw3.gae")


def test_the_graders_own_tables(batch):
    _check(batch, "tables", "hw3.gae")


def test_numpy_and_torch_file_io(batch):
    _check(batch, "fileio", "hw3.gae")


def test_proc_of_the_grader(batch):
    _check(batch, "proc", "hw3.gae")


def test_socket_to_localhost(batch):
    _check(batch, "socket", "hw3.gae")
    assert batch[2] is False  # the listener never saw a connection


def test_30_gb_allocation_hits_the_memory_cap(batch):
    _check(batch, "memory", "hw3.gae", "memory-limit")
    line = _feedback_line(batch, "memory", "hw3.gae")
    assert "stopped: more than 3 GB of memory" in line and "hidden case" in line  # the cap, where it hit


def test_an_answer_cell_stopped_by_the_memory_cap_says_so(batch):
    """The allocation is in the answer cell itself, before its function: the feedback names the cell and the cap."""
    _check(batch, "memorycell", "hw3.discounted_returns", "memory-limit")
    line = _feedback_line(batch, "memorycell", "hw3.discounted_returns")
    assert "your answer cell (cell" in line and "stopped: more than 3 GB of memory" in line


def test_the_feedback_names_the_cap_in_force(tmp_path):
    """Under a 2 GB cap (``--memory-gb 2``) the same allocation says 2 GB: the number is the cap, not a constant."""
    solutions = {ex: solution_source(ex) for ex in FULL}
    hog = GAE + "    import torch\n    hog = torch.ones(30_000_000_000, dtype=torch.uint8)\n    return rewards, values"
    path = submit(tmp_path, "hog", {**solutions, "hw3.gae": hog})
    limits = grader.Limits(cell_timeout=30, submission_timeout=300, static_check=False, memory_bytes=2_000_000_000)
    rows = grader.grade(HW3, [path], tmp_path / "grades", seed=1234, limits=limits, progress=False)
    assert grades_of(rows, "hog") == {**FULL, "hw3.gae": (0.0, "memory-limit")}
    feedback = (tmp_path / "grades" / "feedback" / "hog.md").read_text()
    assert "stopped: more than 2 GB of memory" in feedback and "3 GB" not in feedback


def _feedback_line(batch, student: str, exercise: str) -> str:
    """The row of ``exercise`` in the table of ``student``'s feedback file."""
    feedback = (batch[1] / "grades" / "feedback" / f"{student}.md").read_text()
    return next(line for line in feedback.splitlines() if line.startswith(f"| {exercise} |"))


def test_fork_bomb_hits_the_process_cap(batch):
    _check(batch, "forkbomb", "hw3.gae", "process-limit")


def test_a_file_outside_the_sandbox_cannot_be_opened(batch):
    """The quiz answers sit in a readable file of the grader's; the kernel cannot open it, so 0 points."""
    _check(batch, "openfile", "hw3.quiz")


def test_gradebook_has_isolation_as_last_column(batch):
    assert grader.GRADEBOOK_COLUMNS[-1] == "isolation"
    header = (batch[1] / "grades" / "gradebook.csv").read_text().splitlines()[0]
    assert header.endswith(",isolation")


def test_no_sandbox_is_refused_with_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "problem", lambda: "the kernel has no Landlock")
    with pytest.raises(sandbox.SandboxUnavailable, match="--no-sandbox"):
        grader.grade(HW3, [submit(tmp_path, "x", {})], tmp_path / "grades", progress=False)


def test_cpu_time_cap(tmp_path):
    """An endless loop under a small CPU cap: the kernel is killed by SIGXCPU, status cpu-limit; the
    other exercises run again in a fresh kernel and get full marks."""
    endless = GAE + "    while True:\n        pass"
    solutions = {ex: solution_source(ex) for ex in FULL}
    path = submit(tmp_path, "spinner", {**solutions, "hw3.gae": endless})
    limits = grader.Limits(cell_timeout=120, submission_timeout=300, static_check=False, cpu_seconds=8)
    rows = grader.grade(HW3, [path], tmp_path / "grades", seed=1234, limits=limits, progress=False)
    assert grades_of(rows, "spinner") == {**FULL, "hw3.gae": (0.0, "cpu-limit")}


def test_the_prewarmed_launcher_serves_only_the_grader(tmp_path):
    """The zygote forks a kernel only for a single-use token the grader gave it on its stdin, bound to one
    policy file: a request without it, with another policy, or a second time gets nothing."""
    import time

    from rlcourse.grading import execute

    env = execute._scrubbed_env(tmp_path / "home", 1)
    zygote = sandbox.Zygote(env)
    try:
        policy = tmp_path / "policy.json"
        policy.write_text("{}")  # never read: every request below is refused before
        good = zygote.command(policy)
        token = good[good.index("--attach") + 2]
        address = "\0" + zygote.socket  # an abstract socket: no file anyone could find or open
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the zygote imports torch & co. before it listens
            with socket.socket(socket.AF_UNIX) as probe:
                if probe.connect_ex(address) == 0:
                    break
            time.sleep(0.1)
        for request in ({"token": "0" * 32, "policy": str(policy), "argv": []},
                        {"token": token, "policy": str(tmp_path / "mine.json"), "argv": []}):
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(30)
                conn.connect(address)
                conn.sendall(json.dumps(request).encode() + b"\n")
                assert conn.recv(64) == b""  # closed at once: no kernel, no answer
        assert zygote.alive()
        assert confined_can_connect(tmp_path, zygote.socket) == "refused"  # a kernel cannot even knock
    finally:
        zygote.close()
    assert not zygote.folder.exists()


def confined_can_connect(tmp_path, name: str) -> str:
    """Run a process under the kernels' own confinement (the launcher, a policy as the grader writes it)
    that knows the zygote's socket name, as a kernel forked from the zygote can learn it from its inherited
    command line, and report whether it could connect."""
    import subprocess
    import sys

    from rlcourse.grading import execute

    work, ipc = tmp_path / "confined", tmp_path / "confined-ipc"
    work.mkdir()
    ipc.mkdir()
    script = work / "knock.py"
    script.write_text("import socket, sys\n"
                      "s = socket.socket(socket.AF_UNIX)\n"
                      "print('connected' if s.connect_ex('\\0' + sys.argv[1]) == 0 else 'refused')\n")
    policy = tmp_path / "confined-policy.json"
    policy.write_text(json.dumps(sandbox.policy(work, ipc, {"PATH": "/usr/bin:/bin"}, execute.Limits())))
    result = subprocess.run([sys.executable, str(sandbox.LAUNCHER), str(policy), "--", sys.executable, str(script), name],
                            capture_output=True, text=True, timeout=120)
    return result.stdout.strip()


def test_the_prewarmed_launcher_refuses_to_hold_rlcourse(tmp_path):
    import subprocess
    import sys

    name = f"rlcourse-test-{tmp_path.name}"
    result = subprocess.run([sys.executable, str(sandbox.LAUNCHER), "--zygote", name, "rlcourse"],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "imported rlcourse" in result.stderr
    with socket.socket(socket.AF_UNIX) as probe:
        assert probe.connect_ex("\0" + name) != 0  # it never listened
