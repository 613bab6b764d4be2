"""Approval notifications (issue 6): deliver a message to the channels in orchestrate.yaml.

```yaml
notify:
  - {type: command, command: ["notify-send", "approval needed"], timeout: 10s}   # JSON on stdin
  - {type: webhook, url: "http://127.0.0.1:9000/hook", headers: {X-Token: abc}, timeout: 5s, retries: 3}
  - {type: file, path: logs/approvals.jsonl}                                     # one JSON line
```

A notification must never fail a run: ``notify`` never raises, it returns one ``Delivery``
per channel and the caller logs failures. Channels are served in parallel, so a webhook
retrying does not delay the others. A retried POST carries the same body (same ``sent_at``):
receivers can drop duplicates. Async callers run ``notify`` in a worker thread.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrate import __version__
from orchestrate.domain.errors import WorkspaceError
from orchestrate.spec.durations import parse_duration
from orchestrate.spec.marks import format_path

_KEYS: dict[str, tuple[str, ...]] = {
    "command": ("type", "command", "timeout"),
    "webhook": ("type", "url", "headers", "timeout", "retries"),
    "file": ("type", "path"),
}
_EXAMPLE = "e.g. notify: [{type: file, path: logs/approvals.jsonl}]"
COMMAND_TIMEOUT, WEBHOOK_TIMEOUT, WEBHOOK_RETRIES = 10.0, 5.0, 3
# Backoff doubles from 0.2 s; the caps keep `retries: 1000` from holding a thread for hours.
MAX_RETRIES, _BACKOFF, _BACKOFF_CAP = 10, 0.2, 5.0
_STDERR_TAIL = 4096  # a chatty hook's stderr goes to a temp file; only its tail is read back
_KILL_GRACE = 1.0  # between SIGTERM and SIGKILL


@dataclass(frozen=True)
class Channel:
    """One parsed ``notify:`` entry; only the fields of its ``type`` are set."""

    type: Literal["command", "webhook", "file"]
    label: str  # names the channel in deliveries and logs, without query strings or headers
    argv: tuple[str, ...] = ()
    cwd: Path | None = None  # commands run in the workspace root, so `hooks/notify.sh` works
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    path: Path | None = None
    timeout: float = 0.0
    retries: int = 0


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    detail: str  # "HTTP 200", "exit 0", "appended", or the error on one line


def parse_channels(config: Sequence[Mapping[str, Any]] | None, root: Path) -> list[Channel]:
    """The channels of orchestrate.yaml's ``notify:`` list; raise WorkspaceError on a bad entry."""
    if config is None:
        return []
    raw: object = config  # it came from YAML: the annotation is a hope, not a guarantee
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise _error(("notify",), "must be a list of channels", _EXAMPLE)
    return [_parse_entry(entry, ("notify", i), root) for i, entry in enumerate(raw)]


def notify(channels: Sequence[Channel], message: Mapping[str, Any]) -> list[Delivery]:
    """Send ``message`` plus ``sent_at`` to every channel; one Delivery each, in order; never raises."""
    if not channels:
        return []
    payload = {**message, "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
    try:
        body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    except (TypeError, ValueError) as exc:  # e.g. a circular reference: a caller bug, still not fatal
        return [Delivery(c.label, False, _one_line(f"message is not JSON: {exc}")) for c in channels]
    with ThreadPoolExecutor(max_workers=min(len(channels), 8), thread_name_prefix="notify") as pool:
        return list(pool.map(lambda channel: _deliver(channel, body), channels))


Where = tuple[str | int, ...]


def _error(where: Where, message: str, hint: str) -> WorkspaceError:
    return WorkspaceError(f"orchestrate.yaml: {format_path(where)}: {message}", hint=hint)


def _wrong(where: Where, raw: object, expected: str, hint: str) -> WorkspaceError:
    return _error(where, "missing" if raw is None else f"must be {expected}, not {_shown(raw)}", hint)


def _shown(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _suggest(word: object, choices: Iterable[str], otherwise: str) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f'did you mean "{close[0]}"? ({otherwise})' if close else otherwise


def _scalar(value: object) -> bool:  # bool is an int, but `yes` is never meant as text
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _parse_entry(entry: object, where: Where, root: Path) -> Channel:
    if not isinstance(entry, Mapping):
        raise _error(where, f"must be a mapping, not {_shown(entry)}", _EXAMPLE)
    kind = entry.get("type")
    if kind not in _KEYS:
        if kind is None:
            raise _error(where, "missing type", "add type: command, webhook or file")
        hint = _suggest(kind, _KEYS, "use command, webhook or file")
        raise _error((*where, "type"), f"unknown channel type {_shown(kind)}", hint)
    allowed = _KEYS[kind]
    for key in entry:
        if key not in allowed:
            hint = _suggest(key, allowed, f"{kind} channels take {', '.join(allowed[1:])}")
            raise _error((*where, str(key)), "unknown key", hint)
    timeout = entry.get("timeout")
    if kind == "command":
        argv = _argv(entry.get("command"), (*where, "command"))
        seconds = _timeout(timeout, (*where, "timeout"), COMMAND_TIMEOUT)
        return Channel("command", f"command {argv[0]}", argv=argv, cwd=root, timeout=seconds)
    if kind == "webhook":
        url, label = _url(entry.get("url"), (*where, "url"))
        headers = _headers(entry.get("headers"), (*where, "headers"))
        seconds = _timeout(timeout, (*where, "timeout"), WEBHOOK_TIMEOUT)
        retries = _retries(entry.get("retries"), (*where, "retries"))
        return Channel("webhook", label, url=url, headers=headers, timeout=seconds, retries=retries)
    path = entry.get("path")
    if not isinstance(path, str) or not path.strip():
        hint = "e.g. path: logs/approvals.jsonl (from the workspace root)"
        raise _wrong((*where, "path"), path, "a file path", hint)
    return Channel("file", f"file {path}", path=root / path)


def _argv(raw: object, where: Where) -> tuple[str, ...]:
    hint = 'e.g. command: ["notify-send", "approval needed"]'
    if isinstance(raw, str):
        try:
            argv = shlex.split(raw)
        except ValueError as exc:  # an unclosed quote
            raise _error(where, f"cannot split {_shown(raw)}: {exc}", hint) from None
    elif isinstance(raw, list) and all(_scalar(a) for a in raw):
        argv = [str(a) for a in raw]  # `[sleep, 5]` in YAML gives an int; the OS wants text
    else:
        raise _wrong(where, raw, "a list of strings", hint)
    if not argv or not argv[0]:
        raise _error(where, "is empty", hint)
    return tuple(argv)


def _timeout(raw: object, where: Where, default: float) -> float:
    try:  # parse_duration raises ValueError for a value of any other type too
        seconds = default if raw is None else parse_duration(raw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _error(where, str(exc), "e.g. timeout: 5s") from None
    if seconds <= 0:
        raise _error(where, "must be more than 0", f"e.g. timeout: 5s (the default is {default:g}s)")
    return seconds


def _url(raw: object, where: Where) -> tuple[str, str]:
    hint = 'e.g. url: "http://127.0.0.1:9000/hook"'
    if not isinstance(raw, str):
        raise _wrong(where, raw, "a string", hint)
    with contextlib.suppress(ValueError):  # urlsplit refuses e.g. an unclosed IPv6 bracket
        parts = urlsplit(raw)
        if parts.scheme in ("http", "https") and parts.hostname:
            # The label drops credentials and the query string, where webhook tokens usually live.
            return raw, f"webhook {parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
    raise _error(where, f"{_shown(raw)} is not an http(s) URL", hint)


def _headers(raw: object, where: Where) -> tuple[tuple[str, str], ...]:
    hint = "e.g. headers: {X-Token: abc}"
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not all(isinstance(name, str) and name for name in raw):
        raise _error(where, f"must be a mapping of header names to values, not {_shown(raw)}", hint)
    for name, value in raw.items():
        if not _scalar(value):
            raise _wrong((*where, name), value, "a string", f'e.g. {name}: "abc"')
    return tuple((name, str(value)) for name, value in raw.items())


def _retries(raw: object, where: Where) -> int:
    retries = WEBHOOK_RETRIES if raw is None else raw
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        hint = f"retries: 3 means up to 4 attempts (the default is {WEBHOOK_RETRIES})"
        raise _error(where, f"must be a whole number from 0 to {MAX_RETRIES}, not {_shown(raw)}", hint)
    return retries


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


def _deliver(channel: Channel, body: bytes) -> Delivery:
    send = {"command": _run_command, "webhook": _post, "file": _append}[channel.type]
    try:
        ok, detail = send(channel, body)
    except Exception as exc:  # whatever went wrong, the run goes on and the caller logs it
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Delivery(channel.label, ok, _one_line(detail))


def _run_command(channel: Channel, body: bytes) -> tuple[bool, str]:
    with tempfile.TemporaryFile() as stderr:
        try:  # its own session (process group), so a timeout kills the hook's children too
            proc = subprocess.Popen(
                channel.argv, cwd=channel.cwd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=stderr, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:  # not found, not executable: strerror and the name say it all
            return False, f"{exc.strerror or exc}: {channel.argv[0]}"
        with proc:
            try:
                proc.communicate(body, timeout=channel.timeout)  # a hook that ignores stdin is fine
            except subprocess.TimeoutExpired:
                _kill(proc)
                return False, f"timed out after {channel.timeout:g}s (killed)"
        if (code := proc.returncode) == 0:
            return True, "exit 0"
        status = f"exit {code}" if code > 0 else f"killed by signal {-code}"
        size = stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, size - _STDERR_TAIL))
        lines = [line for line in stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return False, f"{status}: {lines[-1]}" if lines else status


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM first so a hook can clean up; SIGKILL also sweeps children that outlived it.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(_KILL_GRACE)
    proc.wait()


def _post(channel: Channel, body: bytes) -> tuple[bool, str]:
    import httpx  # here, not at the top: most runs never notify and httpx costs import time

    headers = httpx.Headers({"Content-Type": "application/json", "User-Agent": f"orchestrate/{__version__}"})
    headers.update(dict(channel.headers))  # case-insensitive: the user's Content-Type wins
    attempts, detail = channel.retries + 1, ""
    with httpx.Client(timeout=channel.timeout) as client:
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                time.sleep(min(_BACKOFF * 2 ** (attempt - 2), _BACKOFF_CAP))
            try:
                response = client.post(channel.url, content=body, headers=headers)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                detail = f"{type(exc).__name__}: {str(exc) or 'no answer'}"  # transient: try again
                continue
            detail = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
            if response.is_success:
                return True, f"HTTP {response.status_code}" + (f" after {attempt} attempts" * (attempt > 1))
            if response.status_code < 500:  # the receiver refused this message: asking again won't help
                text = response.text.strip()
                return False, f"{detail}: {text[:200]}" if text else detail
    return False, f"{detail} ({attempts} attempts)" if attempts > 1 else detail


def _append(channel: Channel, line: bytes) -> tuple[bool, str]:
    assert channel.path is not None
    try:
        channel.path.parent.mkdir(parents=True, exist_ok=True)
        # One unbuffered write() on an O_APPEND descriptor keeps lines from concurrent runs whole.
        fd = os.open(channel.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            view = memoryview(line + b"\n")
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        return False, f"cannot append to {channel.path}: {exc.strerror or exc}"
    return True, "appended"
