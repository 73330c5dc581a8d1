"""The grader's half of the sandbox: what the student's kernel may touch, and how it is started.

The kernel is started through :mod:`rlcourse.grading.landlock` (a launcher that confines itself,
then execs ``ipykernel``) and talks to the grader over Unix sockets (ZMQ ``ipc`` transport), since
its network namespace has no usable interface. What it may read: the Python installation, the
virtual environment's packages (not the course package), this package's ``grading/kernel.py``
and ``assets/``, a few system files; what it may write: its working folder and its socket folder.
See docs/sandbox.md.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import secrets
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

from rlcourse.grading import landlock

PACKAGE = Path(__file__).resolve().parents[1]  # .../rlcourse
HARNESS = Path(__file__).resolve().with_name("kernel.py")
LAUNCHER = Path(landlock.__file__).resolve()
ISOLATION = "landlock+namespaces+seccomp+rlimits"  # the gradebook's `isolation` column, when confined
NO_ISOLATION = "none (--no-sandbox)"
# system files a Python kernel reads; all of /usr and /lib for shared libraries
SYSTEM_READ = ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf",
               "/etc/host.conf", "/etc/mime.types", "/dev/zero", "/dev/urandom", "/dev/random",
               "/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu"]


class SandboxUnavailable(OSError):
    """The operating system here cannot confine the student's kernel."""


@functools.lru_cache(maxsize=1)
def problem() -> str | None:
    """``None`` when kernels can be confined here, else why not (one phrase). Probed once, in a fresh process."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (Landlock and namespaces), and this is {sys.platform}"
    try:
        out = subprocess.run([sys.executable, str(LAUNCHER), "--probe"], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ.get("PATH", "/usr/bin")})
        return json.loads(out.stdout)["problem"]
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as err:
        return f"the sandbox probe failed ({type(err).__name__})"


def require() -> None:
    """Raise :class:`SandboxUnavailable` with one sentence when kernels cannot be confined here."""
    why = problem()
    if why:
        raise SandboxUnavailable(f"student code will not run unconfined here: {why}; grade on a Linux "
                                 "machine with Landlock (kernel 5.13 or newer) and user namespaces, or pass "
                                 "--no-sandbox to grade anyway without isolation.")


def _python_paths() -> tuple[list[str], list[str]]:
    """``(read, list_only)``: the Python installation and each entry of site-packages except the
    course package itself (a regular install puts it there; an editable one only a path to it)."""
    read = [sys.base_prefix, str(Path(sys.prefix) / "pyvenv.cfg"), str(Path(sys.prefix) / "bin")]
    listed = []
    for packages in site.getsitepackages():
        root = Path(packages)
        if not root.is_dir():
            continue
        listed.append(str(root))
        for entry in root.iterdir():
            if entry.name == PACKAGE.name or entry.resolve() == PACKAGE:
                continue
            read.append(str(entry))
    return read, listed


def policy(workdir: Path, ipc: Path, env: dict[str, str], limits) -> dict:
    """The launcher's policy for one kernel (JSON-ready): paths, resource limits, environment."""
    read, listed = _python_paths()
    return {
        "read": read + SYSTEM_READ + [str(HARNESS), str(PACKAGE / "assets")],
        # import machinery lists the package's parent folder (sys.path) and the package: names only, no contents
        "list": listed + [str(PACKAGE.parent), str(PACKAGE)],
        "write": [str(workdir), str(ipc), "/dev/null"],
        "cwd": str(workdir),
        "env": env,
        "limits": {"address_space": int(limits.memory_bytes), "cpu_seconds": int(limits.cpu_seconds),
                   "file_size": int(limits.file_bytes), "open_files": 1024, "core": 0,
                   "processes": int(limits.processes)},
        "exit_file": str(ipc.parent / "kernel-exit.json"),
    }


def kernel_manager(workdir: Path, env: dict[str, str], limits, confined: bool, zygote: "Zygote | None" = None):
    """A jupyter_client kernel manager over Unix sockets; confined by the launcher when ``confined``, and
    started from the pre-warmed ``zygote`` when one is given (the same confinement, fewer seconds)."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    ipc = workdir.parent / "ipc"
    ipc.mkdir(exist_ok=True)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if confined:
        path = workdir.parent / "sandbox-policy.json"
        path.write_text(json.dumps(policy(workdir, ipc, env, limits)))
        kernel = (zygote.command(path) if zygote is not None else [sys.executable, str(LAUNCHER), str(path), "--"]) + kernel
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(ipc / "k"),
                            connection_file=str(ipc / "kernel.json"))
    km._kernel_spec = KernelSpec(argv=kernel, display_name="Python 3 (rlcourse sandbox)", language="python",
                                 env={}, resource_dir=str(ipc))
    return km


def kernel_ending(workdir: Path) -> dict:
    """How the last confined kernel ended (``{"signal": n}`` or ``{"exit": n}``), read once; {} if unknown."""
    path = workdir.parent / "kernel-exit.json"
    try:
        ending = json.loads(path.read_text())
        path.unlink()
        return ending if isinstance(ending, dict) else {}
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- the pre-warmed launcher

# what every kernel imports before the student's first line: third-party only, never rlcourse (the zygote
# refuses to serve if rlcourse is loaded); a module missing here is simply imported later by the kernel
PRELOAD = ("torch", "numpy", "safetensors.torch", "transformers.models.auto.modeling_auto",
           "transformers.models.auto.tokenization_auto", "transformers.models.llama.modeling_llama",
           "ipykernel.kernelapp", "ipykernel.ipkernel")
_ZYGOTES: dict[str, "Zygote"] = {}  # one per grading process and kernel environment


class Zygote:
    """A fresh Python process (``landlock.py --zygote``) that imported :data:`PRELOAD` and forks each
    confined kernel: the launcher's confinement unchanged, without seconds of imports per kernel.

    It is started with the kernels' own environment (only the per-submission folders differ, which each
    kernel sets before ipykernel starts), never forked from the grader, so no object of the grader's,
    the reference's least, is in its memory. Each kernel needs a single-use token bound to its policy
    file, given on the zygote's stdin (a pipe only this process holds). See docs/sandbox.md.
    """

    def __init__(self, env: dict[str, str]):
        self.folder = Path(tempfile.mkdtemp(prefix="rlcourse-zygote-"))  # 0700: the grader's only
        self.socket = f"rlcourse-zygote-{secrets.token_hex(16)}"  # an abstract socket's name (landlock._abstract)
        home = self.folder / "home"
        (home / "tmp").mkdir(parents=True)
        paths = {"HOME": home, "IPYTHONDIR": home / ".ipython", "MPLCONFIGDIR": home / ".mpl", "HF_HOME": home / ".hf",
                 "TMPDIR": home / "tmp"}
        env = {**env, **{k: str(v) for k, v in paths.items() if k in env}}
        self.process = subprocess.Popen([sys.executable, str(LAUNCHER), "--zygote", str(self.socket), *PRELOAD],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env=env, cwd=self.folder)

    def alive(self) -> bool:
        return self.process.poll() is None

    def command(self, policy_path: Path) -> list[str]:
        """The stub that jupyter_client starts as the kernel: it asks the zygote for one confined kernel."""
        token = secrets.token_hex(16)
        self.process.stdin.write(f"{token}\t{policy_path}\n".encode())
        self.process.stdin.flush()
        return [sys.executable, "-I", "-S", str(LAUNCHER), "--attach", str(self.socket), token, str(policy_path), "--"]

    def close(self) -> None:
        """Stop the zygote (closing its stdin ends it) and remove its folder."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def zygote(env: dict[str, str]) -> Zygote:
    """This process's zygote for kernels of environment ``env`` (started at the first call, kept until exit)."""
    key = json.dumps({k: v for k, v in sorted(env.items()) if k not in ("HOME", "IPYTHONDIR", "MPLCONFIGDIR",
                                                                         "HF_HOME", "TMPDIR")})
    if key not in _ZYGOTES or not _ZYGOTES[key].alive():
        if key in _ZYGOTES:
            _ZYGOTES[key].close()
        _ZYGOTES[key] = Zygote(env)
    return _ZYGOTES[key]


@atexit.register
def _close_zygotes() -> None:
    for z in _ZYGOTES.values():
        z.close()
    _ZYGOTES.clear()
