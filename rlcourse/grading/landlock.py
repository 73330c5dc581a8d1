"""Confine a process with what the Linux kernel enforces: Landlock, namespaces and resource limits.

Standard library only, and runnable as a script, so that the grader can start a student's
Jupyter kernel through it without importing torch or the rest of the package first::

    python landlock.py POLICY.json -- python -m ipykernel_launcher -f {connection_file}

The launcher reads the policy (a JSON file the grader wrote outside the kernel's folder), then

1. sets the resource limits: address space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), file
   size (``RLIMIT_FSIZE``), open files;
2. enters new user, network and PID namespaces: no network interface but a down loopback (the
   kernel talks to the grader over Unix sockets in its IPC folder) and no view of other processes;
3. forks the kernel as the namespace's first process (everything it starts dies with it, and it
   dies with the launcher), which applies a Landlock ruleset to itself (read and execute only the
   listed paths, write only the listed folders, no TCP bind/connect, no signals or abstract Unix
   sockets outside the sandbox) and a seccomp filter (threads yes, new processes no), then
   execs the command;
4. waits, and writes how the kernel ended (exit code or signal) to the policy's ``exit_file``.

See docs/sandbox.md for why Landlock and namespaces, and what they do not cover.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

# system calls (x86_64 and aarch64 share these numbers)
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG = 38, 1
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x10000000, 0x40000000, 0x20000000

# file-system rights, by the ABI version that introduced them
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ALL_V1 = (1 << 13) - 1  # execute … make_sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # the rights a file (not a folder) may hold

_libc = ctypes.CDLL(None, use_errno=True)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version (0: no Landlock: too old a kernel, disabled, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    rights = FS_ALL_V1
    rights |= FS_REFER if abi >= 2 else 0
    rights |= FS_TRUNCATE if abi >= 3 else 0
    rights |= FS_IOCTL_DEV if abi >= 5 else 0
    return rights


def restrict_self(read: list[str], write: list[str], listed: list[str] = (), abi: int | None = None) -> None:
    """Apply Landlock to this process (and everything it execs or forks): read/execute ``read``,
    list the names in ``listed`` (not their contents), read and write ``write``; all else on the file system denied; no TCP; no signals or
    abstract Unix sockets leaving the sandbox. Paths that do not exist are skipped."""
    abi = abi_version() if abi is None else abi
    if abi < 1:
        raise OSError("Landlock is not available on this kernel")
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        read_rights = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        for paths, rights in ((read, read_rights), (listed, FS_READ_DIR), (write, handled)):
            for path in paths:
                _add_rule(ruleset, path, rights & handled)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def _add_rule(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        if _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)):
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# (audit arch, clone, clone3, fork-like calls) per machine; other machines get no filter (probe says so)
_SYSCALLS = {"x86_64": (0xC000003E, 56, 435, (57, 58)), "aarch64": (0xC00000B7, 220, 435, ())}
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
CLONE_THREAD = 0x00010000


def no_new_processes() -> None:
    """A seccomp filter: threads may be created, processes may not (fork, vfork and clone without
    CLONE_THREAD fail with EAGAIN; clone3 says ENOSYS, so libc falls back to clone). The cap on
    processes is one, whatever the user; threads are bounded by the address-space limit."""
    arch, clone, clone3, forks = _SYSCALLS[os.uname().machine]
    again, nosys = _ERRNO | 11, _ERRNO | 38  # EAGAIN, ENOSYS
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ, 1, 0, arch), (_RET, 0, 0, _KILL), (_LD_W_ABS, 0, 0, 0),
            (_JGE, 0, 1, 0x40000000), (_RET, 0, 0, nosys)]  # x32 system calls: none
    for nr in forks:
        prog += [(_JEQ, 0, 1, nr), (_RET, 0, 0, again)]
    prog += [(_JEQ, 0, 1, clone3), (_RET, 0, 0, nosys),
             (_JEQ, 0, 3, clone), (_LD_W_ABS, 0, 0, 16), (_JSET, 1, 0, CLONE_THREAD), (_RET, 0, 0, again),
             (_RET, 0, 0, _ALLOW)]
    filters = (_SockFilter * len(prog))(*[_SockFilter(*p) for p in prog])
    fprog = _SockFprog(len(prog), filters)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter failed")


def enter_namespaces() -> None:
    """New user, network and PID namespaces (the next child is the PID namespace's first process);
    the user keeps its own uid and gid inside."""
    uid, gid = os.geteuid(), os.getegid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(user, net, pid) failed")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def set_limits(limits: dict) -> None:
    """Soft = hard limits, so the confined process cannot raise them again (for CPU time the hard
    limit is 1 s above: SIGXCPU, then SIGKILL)."""
    for name, key in (("RLIMIT_AS", "address_space"), ("RLIMIT_CPU", "cpu_seconds"), ("RLIMIT_FSIZE", "file_size"),
                      ("RLIMIT_NOFILE", "open_files"), ("RLIMIT_NPROC", "processes"), ("RLIMIT_CORE", "core")):
        if limits.get(key) is not None:
            value = int(limits[key])
            resource.setrlimit(getattr(resource, name), (value, value + 1 if key == "cpu_seconds" else value))


def probe() -> str | None:
    """``None`` when this process could confine a child here, else why not (one phrase). Forks once."""
    abi = abi_version()
    if os.uname().machine not in _SYSCALLS:
        return f"the process filter knows x86_64 and aarch64, not {os.uname().machine}"
    if abi < 1:
        return "the kernel has no Landlock (Linux 5.13 or newer with Landlock enabled is needed)"
    pid = os.fork()
    if pid == 0:  # the child tries everything, then exits: 0 when all of it worked
        try:
            enter_namespaces()
            restrict_self([], [], abi=abi)
            no_new_processes()
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any failure is the answer
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return "unprivileged user and network namespaces (or seccomp) are not allowed here"
    return None


def _confine_self(policy: dict, processes) -> None:
    """In the kernel-to-be (PID 1 of the new namespaces): die with the launcher, then the process cap,
    Landlock, the seccomp filter and the working folder. Raises when any of it fails."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    set_limits({"processes": processes})
    restrict_self(policy["read"], policy["write"], policy.get("list", []))
    no_new_processes()
    os.chdir(policy["cwd"])


def _start_confined(policy: dict, run) -> int:
    """Set the limits, enter the namespaces and fork the kernel, which confines itself and calls ``run()``
    (never to return); returns the kernel's pid. Never runs ``run`` unconfined."""
    limits = dict(policy["limits"])
    processes = limits.pop("processes", None)
    set_limits(limits)
    enter_namespaces()
    child = os.fork()
    if child == 0:  # PID 1 of the new namespace: the kernel
        try:
            _confine_self(policy, processes)
            run()
        except BaseException as err:  # noqa: BLE001 - report, never run unconfined
            print(f"rlcourse sandbox: {err}", file=sys.stderr)
        os._exit(126)
    return child


def _write_ending(policy: dict, status: int, cpu: float) -> int:
    """Write how the kernel ended to the policy's ``exit_file``; return the launcher's exit code."""
    ending = {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {"exit": os.WEXITSTATUS(status)}
    # the kernel is its namespace's init, which ignores SIGXCPU: the CPU cap ends it with the hard
    # limit's SIGKILL, so the CPU time it used says which limit that was
    ending["cpu_seconds"] = round(cpu, 1)
    try:
        with open(policy["exit_file"], "w", encoding="utf-8") as f:
            json.dump(ending, f)
    except OSError:
        pass
    return 128 + ending["signal"] if "signal" in ending else ending["exit"]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        problem = probe()
        print(json.dumps({"problem": problem, "abi": abi_version()}))
        return 0
    if argv[:1] == ["--zygote"] and len(argv) >= 2:
        return serve(argv[1], argv[2:])
    if argv[:1] == ["--attach"] and len(argv) >= 5 and argv[4] == "--":
        return attach(argv[1], argv[2], argv[3], argv[5:])
    if len(argv) < 3 or argv[1] != "--":
        print("usage: landlock.py POLICY.json -- COMMAND... | --zygote SOCKET [MODULE...] | "
              "--attach SOCKET TOKEN POLICY.json -- COMMAND... | --probe", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        policy = json.load(f)
    command = argv[2:]
    child = _start_confined(policy, lambda: os.execve(command[0], command, policy["env"]))

    def forward(signum, _frame):  # the kernel is PID 1 of its namespace: only SIGKILL ends it from here
        os.kill(child, signal.SIGINT if signum == signal.SIGINT else signal.SIGKILL)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    cpu = 0.0
    while True:
        try:
            _, status, usage = os.wait4(child, 0)
            cpu = usage.ru_utime + usage.ru_stime
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    return _write_ending(policy, status, cpu)


# ----------------------------------------------------------------------------- the pre-warmed launcher
#
# Starting a kernel costs seconds of imports (torch, transformers, ipykernel) before the student's
# first line runs. The zygote is a fresh Python process (started by the grader with the kernel's
# environment, never forked from the grader, never importing rlcourse) that imports those once and
# then, per kernel, forks a launcher that confines itself exactly as main() does; only the last step
# differs: the kernel runs ipykernel in the already-warm interpreter instead of exec'ing a new one.
# Requests come over a Unix socket and must carry a single-use token the grader gave the zygote on
# its stdin, so nothing else (a kernel included) can ask it for anything.

ATTACH_WAIT = 120.0  # seconds a kernel's stub waits for its zygote to finish importing and listen
POLL = 0.05  # seconds between checks of a confined kernel and of its stub


def serve(socket_path: str, preload: list[str]) -> int:
    """The zygote: import ``preload``, then fork a confined kernel for each request with a valid token."""
    import importlib
    import select
    import socket

    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError as err:  # the kernel imports it itself, or does without
            print(f"rlcourse sandbox: the zygote could not preload {name} ({err})", file=sys.stderr)
    if any(name == "rlcourse" or name.startswith("rlcourse.") for name in sys.modules):
        print("rlcourse sandbox: the zygote imported rlcourse; it serves no kernel", file=sys.stderr)
        return 1
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(_abstract(socket_path))  # no file: kernels, in their own network namespace, cannot reach it
    listener.listen(16)
    tokens: dict[str, str] = {}  # single-use token -> the one policy file it may start a kernel with
    pending = b""
    while True:
        ready, _, _ = select.select([listener, 0], [], [], 1.0)
        _reap()
        if 0 in ready:
            data = os.read(0, 4096)
            if not data:  # the grader closed our stdin (or died): no more kernels
                return 0
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                token, _, policy = line.decode().strip().partition("\t")
                tokens[token] = policy
        if listener in ready:
            conn, _ = listener.accept()
            request = _read_request(conn)
            if not isinstance(request, dict) or tokens.get(str(request.get("token"))) != request.get("policy"):
                conn.close()  # no token, a used one, another policy than the token's, or garbage: nothing
                continue
            del tokens[request["token"]]
            if os.fork() == 0:
                listener.close()
                tokens.clear()
                os._exit(_launch(request, conn))
            conn.close()


def _abstract(name: str) -> str:
    """The zygote's socket lives in the abstract namespace (a leading NUL byte), which is per network
    namespace: the grader's processes reach it, a confined kernel (CLONE_NEWNET) cannot, even knowing the
    name (its inherited command line shows it). A socket *file* would be reachable: Landlock does not
    restrict connect() to a named Unix socket."""
    return "\0" + name


def _reap() -> None:
    """Collect the zygote's ended launchers (their kernels' endings go to each policy's exit_file)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _read_request(conn) -> dict | None:
    """One JSON line from a stub (at most 64 kB, within 10 s), or None."""
    conn.settimeout(10)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 65536:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None
    finally:
        conn.settimeout(None)


def _launch(request: dict, conn) -> int:
    """In a fork of the zygote: the launcher of one kernel, as main() is, with the kernel run in-process."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    with open(request["policy"], encoding="utf-8") as f:
        policy = json.load(f)
    command = [str(part) for part in request["argv"]]
    child = _start_confined(policy, lambda: _run_module(command, policy, conn))
    status, cpu = _watch(child, conn)
    code = _write_ending(policy, status, cpu)
    try:
        conn.sendall(str(code).encode())
    except OSError:
        pass
    return code


def _run_module(command: list[str], policy: dict, conn) -> None:
    """Run ``python -m MODULE ARGS`` in this (confined, already warm) interpreter, as a new one would."""
    import runpy

    conn.close()
    if len(command) < 3 or command[1] != "-m":
        raise ValueError("the zygote runs `python -m MODULE ...` commands only")
    os.environ.clear()
    os.environ.update(policy["env"])
    sys.argv = [command[2]] + command[3:]
    sys.path[0] = policy["cwd"]  # `python -m` puts the working folder first, not this file's folder
    code = 0
    try:
        runpy.run_module(command[2], run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    os._exit(code)


def _watch(child: int, conn) -> tuple[int, float]:
    """Wait for the kernel; relay its stub's interrupt, and kill it when the stub is told to stop or dies."""
    import select

    while True:
        pid, status, usage = os.wait4(child, os.WNOHANG)
        if pid:
            return status, usage.ru_utime + usage.ru_stime
        ready, _, _ = select.select([conn], [], [], POLL)
        if ready:
            try:
                data = conn.recv(64)
            except OSError:
                data = b""
            if data and set(data) == {ord("I")}:
                os.kill(child, signal.SIGINT)
            else:  # "K", or the stub is gone: the kernel goes too (as with the launcher's death)
                os.kill(child, signal.SIGKILL)
                _, status, usage = os.wait4(child, 0)
                return status, usage.ru_utime + usage.ru_stime


def attach(socket_path: str, token: str, policy_path: str, command: list[str]) -> int:
    """The process jupyter_client starts and manages as "the kernel": asks the zygote for a confined
    kernel, relays signals to it (SIGINT interrupts, others kill), and exits when it ends, with its code."""
    import socket
    import time

    deadline = time.monotonic() + ATTACH_WAIT
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            conn.connect(_abstract(socket_path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                print("rlcourse sandbox: the pre-warmed launcher is not listening", file=sys.stderr)
                return 1
            time.sleep(POLL)
    conn.sendall(json.dumps({"token": token, "policy": policy_path, "argv": command}).encode() + b"\n")

    def forward(signum, _frame):
        try:
            conn.sendall(b"I" if signum == signal.SIGINT else b"K")
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    reply = b""
    while True:
        try:
            chunk = conn.recv(64)
        except InterruptedError:
            continue
        if not chunk:
            break
        reply += chunk
    return int(reply) if reply.strip().lstrip(b"-").isdigit() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
