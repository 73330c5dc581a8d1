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


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        problem = probe()
        print(json.dumps({"problem": problem, "abi": abi_version()}))
        return 0
    if len(argv) < 3 or argv[1] != "--":
        print("usage: landlock.py POLICY.json -- COMMAND...", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        policy = json.load(f)
    command = argv[2:]
    limits = dict(policy["limits"])
    processes = limits.pop("processes", None)
    set_limits(limits)
    enter_namespaces()
    child = os.fork()
    if child == 0:  # PID 1 of the new namespace: the kernel
        try:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            set_limits({"processes": processes})
            restrict_self(policy["read"], policy["write"], policy.get("list", []))
            no_new_processes()
            os.chdir(policy["cwd"])
            os.execve(command[0], command, policy["env"])
        except BaseException as err:  # noqa: BLE001 - report, never run unconfined
            print(f"rlcourse sandbox: {err}", file=sys.stderr)
        os._exit(126)

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
