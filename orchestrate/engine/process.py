"""Real subprocesses for stages: own session, output straight to the log file.

``posix_spawn`` (vfork under the hood) with file actions hands the log file to
the child as stdout and stderr, so output never passes through this process and
memory stays flat however much a stage prints. Exit is awaited on a pidfd, so
waiting costs no thread. Cancellation sends SIGTERM to the whole process group,
waits ``grace`` seconds, then SIGKILL.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from orchestrate.engine.masking import Masker

# Characters that need a shell. Without any, a command is exec'd directly, as make does.
_SHELL_META = frozenset("|&;<>()$`\\\"'*?[]#~=%!{}\n\t")
_SHELL_WORDS = frozenset(
    {
        "cd",
        "exit",
        "export",
        "set",
        "unset",
        "source",
        ".",
        "eval",
        "exec",
        "alias",
        "ulimit",
        "umask",
        "wait",
        "trap",
        "read",
        "shift",
        "return",
        "if",
        "for",
        "while",
        "case",
        "until",
        "function",
        "!",
        "readonly",
        "local",
        "type",
        "command",
        "hash",
        "times",
        "getopts",
        "break",
        "continue",
    }
)
_HAS_PIDFD = hasattr(os, "pidfd_open")


def command_argv(command: str) -> list[str]:
    """argv for a ``run:`` string: direct exec when it is a plain word list, else ``/bin/sh -c``."""
    if command and not _SHELL_META.intersection(command):
        words = command.split()
        if words and words[0] not in _SHELL_WORDS:
            return words
    # -e: a multi-line script stops at its first failing command (as GitHub Actions' sh -e {0}).
    return ["/bin/sh", "-e", "-c", command]


def display_argv(argv: Sequence[str]) -> str:
    if len(argv) == 4 and tuple(argv[:3]) == ("/bin/sh", "-e", "-c"):
        return argv[3]
    return shlex.join(argv)


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int  # negative: killed by that signal
    error: str | None = None


@functools.lru_cache(maxsize=256)
def _executable(name: str, path: str | None) -> str:
    """The program's full path, found once per PATH: posix_spawnp would walk PATH for every stage."""
    if "/" in name:
        return name
    return shutil.which(name, path=path) or name  # not found: let posix_spawn say so


def _spawn(argv: Sequence[str], env: Mapping[str, str], log_path: str) -> int:
    # Stages run in the run process's working directory (the CLI moves to the workspace):
    # posix_spawn cannot change directory before Python 3.13.
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    program = _executable(argv[0], env.get("PATH"))
    return os.posix_spawn(program, list(argv), dict(env), file_actions=actions, setsid=True)


async def _wait_pid(pid: int) -> int:
    """Wait for ``pid`` to exit and reap it; returns the exit code (negative for a signal)."""
    if _HAS_PIDFD:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                await anyio.wait_readable(fd)
            finally:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
    while True:  # no pidfd (old kernel, macOS): poll with a short sleep
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        await anyio.sleep(0.01)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stage_processes(run_id: str) -> list[int]:
    """Session leaders whose environment names ``run_id`` (Linux /proc; [] elsewhere)."""
    marker = f"ORCHESTRATE_RUN_ID={run_id}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            if os.getsid(int(entry)) == int(entry):  # the stage's own session: its group holds the rest
                found.append(int(entry))
        except OSError:
            continue
    return found


def kill_group(pid: int) -> None:
    """SIGKILL what is left of a stage's process group (a crashed run's stage, before it re-runs)."""
    _signal_group(pid, signal.SIGKILL)


async def terminate(pid: int, grace: float) -> int:
    """SIGTERM the process group, wait ``grace`` seconds, then SIGKILL it; returns the exit code."""
    _signal_group(pid, signal.SIGTERM)
    code: int | None = None
    with anyio.move_on_after(grace):
        code = await _wait_pid(pid)
    if code is None:
        _signal_group(pid, signal.SIGKILL)
        code = await _wait_pid(pid)
    _signal_group(pid, signal.SIGKILL)  # stragglers that ignored SIGTERM after the leader left
    return code


def _spawn_failed(error: OSError, argv: Sequence[str], log_path: str) -> ProcessResult:
    code, message = (
        (127, "command not found") if isinstance(error, FileNotFoundError) else (126, "permission denied")
    )
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"orchestrate: {message}: {argv[0]}\n")
    return ProcessResult(code, f"{message}: {argv[0]}")


async def run_process(
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: str,
    grace: float,
    on_start: Callable[[int | None], None] = lambda pid: None,
    masker: Masker | None = None,
) -> ProcessResult:
    """Run to completion. On cancellation the process group is terminated before re-raising.

    With a ``masker`` (the run has secrets) output goes through a pipe and is masked on its
    way to the log; otherwise the log file is the process's stdout and stderr.
    """
    if masker is not None:
        return await _run_masked(argv, env, log_path, grace, on_start, masker)
    try:
        pid = _spawn(argv, env, log_path)
    except (FileNotFoundError, PermissionError) as e:
        on_start(None)
        return _spawn_failed(e, argv, log_path)
    on_start(pid)
    return ProcessResult(await _wait_or_terminate(pid, grace))


async def _wait_or_terminate(pid: int, grace: float) -> int:
    """The exit code; if cancelled meanwhile, the process group is terminated before re-raising."""
    try:
        return await _wait_pid(pid)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await terminate(pid, grace)
        raise


async def _run_masked(
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: str,
    grace: float,
    on_start: Callable[[int | None], None],
    masker: Masker,
) -> ProcessResult:
    from orchestrate.engine.masking import pump, spawn_masked

    try:
        pid, read_fd = spawn_masked(argv, env, log_path)
    except (FileNotFoundError, PermissionError) as e:
        on_start(None)
        return _spawn_failed(e, argv, log_path)
    on_start(pid)
    drained = anyio.Event()
    masker = masker.fresh()  # the executor's is shared by every stage running at once

    async def copy() -> None:
        await pump(read_fd, log_path, masker)
        drained.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(copy)
        code = await _wait_or_terminate(pid, grace)
        # A background child may still hold the pipe: give the output a moment, then stop copying.
        with anyio.move_on_after(1.0):
            await drained.wait()
        tg.cancel_scope.cancel()
    return ProcessResult(code)
