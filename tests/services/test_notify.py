"""Notification channels against real things: a local HTTP server, real subprocesses, real files."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrate.domain.errors import WorkspaceError
from orchestrate.services.notify import Channel, Delivery, notify, parse_channels

# fmt: off
MESSAGE: dict[str, Any] = {
    "kind": "approval_requested", "id": "apr-7", "run": "run-42", "pipeline": "deploy-prod",
    "stage": "deploy", "approvers": ["alice", "devops"], "quorum": 2, "deadline": "2030-01-01T12:00:00+00:00",
    "evidence": {"dist/**": "sha256:ab12"}, "approve": "orchestrate approval approve apr-7",
    "comment": "größer\nzweite Zeile",  # non-ASCII and a newline must survive as one JSON line
}
# fmt: on
BIG = {**MESSAGE, "evidence": {"blob": "z" * 1_000_000}}  # more than a pipe buffer holds


@dataclass
class Hook:  # what the local webhook receiver got, and how it should answer
    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    stall: bool = False  # hold every answer until the test ends
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def hook() -> Iterator[Hook]:
    got = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            got.headers.append({k.lower(): v for k, v in self.headers.items()})
            status = got.statuses.pop(0) if got.statuses else 200  # attempts are sequential: no lock
            if got.stall:
                got.release.wait(10)
            answer = b"no such hook" if status == 404 else b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a stalled handler must not hold up server_close()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield got
    got.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:  # bound, not listening: connections are refused, the port stays ours
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def channel(root: Path, **entry: Any) -> Channel:
    return parse_channels([entry], root)[0]


def webhook(root: Path, url: str, **entry: Any) -> Channel:
    return channel(root, type="webhook", url=url, **entry)


def python(root: Path, code: str, *args: str, timeout: str = "10s") -> Channel:
    return channel(root, type="command", command=[sys.executable, "-c", code, *args], timeout=timeout)


def test_webhook_posts_the_message_as_json(tmp_path: Path, hook: Hook) -> None:
    [delivery] = notify([webhook(tmp_path, hook.url, headers={"X-Token": "s3cret"})], MESSAGE)
    assert delivery == Delivery(f"webhook {hook.url}", True, "HTTP 200")
    [payload] = [json.loads(body) for body in hook.bodies]
    assert datetime.fromisoformat(payload.pop("sent_at")).utcoffset() is not None
    assert payload == MESSAGE
    assert hook.headers[0]["content-type"] == "application/json" and hook.headers[0]["x-token"] == "s3cret"


def test_webhook_retries_5xx_with_backoff_but_not_4xx(tmp_path: Path, hook: Hook) -> None:
    hook.statuses = [500, 502]
    started = time.monotonic()
    assert notify([webhook(tmp_path, hook.url)], MESSAGE)[0].detail == "HTTP 200 after 3 attempts"
    assert len(hook.bodies) == 3 and len(set(hook.bodies)) == 1  # one sent_at: receivers can dedupe
    assert time.monotonic() - started >= 0.2 + 0.4
    hook.statuses, hook.bodies = [503] * 9, []
    [delivery] = notify([webhook(tmp_path, hook.url, retries=2)], MESSAGE)
    assert delivery == Delivery(f"webhook {hook.url}", False, "HTTP 503 Service Unavailable (3 attempts)")
    assert len(hook.bodies) == 3
    hook.statuses, hook.bodies = [404], []  # the receiver refused it: asking again won't help
    [delivery] = notify([webhook(tmp_path, hook.url)], MESSAGE)
    assert delivery == Delivery(f"webhook {hook.url}", False, "HTTP 404 Not Found: no such hook")
    assert len(hook.bodies) == 1


def test_webhook_connection_refused_and_timeout(tmp_path: Path, hook: Hook, closed_port: int) -> None:
    started = time.monotonic()
    [delivery] = notify([webhook(tmp_path, f"http://127.0.0.1:{closed_port}/hook")], MESSAGE)
    assert not delivery.ok and delivery.detail.startswith("ConnectError: ")
    assert "refused" in delivery.detail and delivery.detail.endswith("(4 attempts)")
    assert 0.2 + 0.4 + 0.8 <= time.monotonic() - started < 5  # only the backoff between retries
    hook.stall, started = True, time.monotonic()
    [delivery] = notify([webhook(tmp_path, hook.url, timeout="300ms", retries=1)], MESSAGE)
    assert not delivery.ok and delivery.detail.startswith("ReadTimeout: ")
    assert delivery.detail.endswith("(2 attempts)") and len(hook.bodies) == 2
    assert time.monotonic() - started < 5


def test_command_gets_the_message_as_json_on_stdin_in_the_workspace_root(tmp_path: Path) -> None:
    out = tmp_path / "received.json"
    save = (
        "import os, sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read()); "
        "print(os.getcwd(), file=open('cwd', 'w'))"
    )
    [delivery] = notify([python(tmp_path, save, str(out))], MESSAGE)
    assert delivery == Delivery(f"command {sys.executable}", True, "exit 0")
    payload = json.loads(out.read_text())
    assert payload.pop("sent_at") and payload == MESSAGE
    assert (tmp_path / "cwd").read_text() == f"{tmp_path}\n"  # so `hooks/notify.sh` can be written
    assert notify([python(tmp_path, "pass")], BIG)[0].detail == "exit 0"  # ignoring stdin is fine


def test_command_failure_reports_exit_code_and_last_stderr_line(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('x' * 10**6 + '\\nwarming up\\nno desktop\\n\\n'); sys.exit(3)"
    [delivery] = notify([python(tmp_path, code)], MESSAGE)
    assert delivery == Delivery(f"command {sys.executable}", False, "exit 3: no desktop")
    [long] = notify([python(tmp_path, "import sys; sys.stderr.write('y' * 5000); sys.exit(1)")], MESSAGE)
    assert long.detail.startswith("exit 1: yyy") and len(long.detail) == 300  # one short line


def _gone(pid: int) -> bool:  # a killed orphan may stay a zombie until init reaps it
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_command_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; "
        "time.sleep(60)']); open(sys.argv[1], 'w').write(f'{os.getpid()} {c.pid}'); time.sleep(60)"
    )
    started = time.monotonic()
    [delivery] = notify([python(tmp_path, code, str(pids), timeout="1s")], BIG)  # stdin unread: no block
    assert delivery == Delivery(f"command {sys.executable}", False, "timed out after 1s (killed)")
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not all(_gone(int(pid)) for pid in pids.read_text().split()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(int(pid)) for pid in pids.read_text().split())
    ready = tmp_path / "ready"  # a hook that ignores SIGTERM gets SIGKILL after a grace period
    code = "import signal as s, sys, time; s.signal(15, s.SIG_IGN); open(sys.argv[1], 'w'); time.sleep(9)"
    started = time.monotonic()
    [delivery] = notify([python(tmp_path, code, str(ready), timeout="500ms")], MESSAGE)
    assert delivery.detail == "timed out after 0.5s (killed)" and ready.exists()
    assert 1.5 <= time.monotonic() - started < 5  # the timeout, then the grace before SIGKILL


def test_file_appends_one_json_line_per_message(tmp_path: Path) -> None:
    approvals = channel(tmp_path, type="file", path="logs/nested/approvals.jsonl")
    assert notify([approvals], MESSAGE) == [Delivery("file logs/nested/approvals.jsonl", True, "appended")]
    assert notify([approvals], {**MESSAGE, "kind": "approval_decided"})[0].ok
    lines = (tmp_path / "logs/nested/approvals.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["approval_requested", "approval_decided"]
    assert json.loads(lines[0])["comment"] == MESSAGE["comment"] and "größer" in lines[0]  # not \\u-escaped
    [delivery] = notify([channel(tmp_path, type="file", path="logs")], MESSAGE)
    assert delivery == Delivery("file logs", False, f"cannot append to {tmp_path / 'logs'}: Is a directory")


def test_a_failing_channel_does_not_stop_the_others(tmp_path: Path, hook: Hook, closed_port: int) -> None:
    channels = [
        webhook(tmp_path, f"http://127.0.0.1:{closed_port}/hook", retries=0),
        python(tmp_path, "raise SystemExit(2)"),
        channel(tmp_path, type="file", path="approvals.jsonl"),
        webhook(tmp_path, hook.url),
        channel(tmp_path, type="command", command=["/nonexistent/hook"]),
    ]
    deliveries = notify(channels, MESSAGE)
    assert [d.channel for d in deliveries] == [c.label for c in channels]  # in channel order
    assert [d.ok for d in deliveries] == [False, False, True, True, False]
    assert deliveries[0].detail.startswith("ConnectError: ") and "attempts" not in deliveries[0].detail
    assert deliveries[1].detail == "exit 2"
    assert deliveries[4].detail == "No such file or directory: /nonexistent/hook"
    assert json.loads((tmp_path / "approvals.jsonl").read_text())["id"] == "apr-7"
    assert json.loads(hook.bodies[0])["id"] == "apr-7"


def test_notify_adds_sent_at_without_touching_the_message(tmp_path: Path) -> None:
    assert notify([], MESSAGE) == []
    message = {**MESSAGE, "where": tmp_path}  # not JSON: sent as its text rather than failing
    notify([channel(tmp_path, type="file", path="a.jsonl")], message)
    assert "sent_at" not in message
    line = json.loads((tmp_path / "a.jsonl").read_text())
    assert line["where"] == str(tmp_path) and "sent_at" in line
    message["self"] = message  # a loop cannot be sent at all: every channel fails, nothing raises
    [delivery] = notify([channel(tmp_path, type="file", path="b.jsonl")], message)
    assert not delivery.ok and delivery.detail.startswith("message is not JSON: ")


def test_importing_notify_does_not_import_httpx() -> None:
    code = "import sys, orchestrate.services.notify; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parse_channels_defaults(tmp_path: Path) -> None:
    config = yaml.safe_load("""
        - {type: command, command: "notify-send 'approval needed'"}
        - {type: webhook, url: "http://127.0.0.1:9000/hook", headers: {X-Count: 1}}
        - {type: file, path: logs/approvals.jsonl}
    """)
    command, hook, file = parse_channels(config, tmp_path)
    argv = ("notify-send", "approval needed")
    assert command == Channel("command", "command notify-send", argv, tmp_path, timeout=10.0)
    url = "http://127.0.0.1:9000/hook"
    headers = (("X-Count", "1"),)
    assert hook == Channel("webhook", f"webhook {url}", url=url, headers=headers, timeout=5, retries=3)
    assert file == Channel("file", "file logs/approvals.jsonl", path=tmp_path / "logs/approvals.jsonl")
    assert parse_channels(None, tmp_path) == [] and parse_channels([], tmp_path) == []
    assert webhook(tmp_path, "https://x.example", timeout="1.5m", retries=0).timeout == 90.0
    hidden = webhook(tmp_path, "https://bot:pw@hooks.example.com:8443/in/abc?token=s3cret")
    assert hidden.label == "webhook https://hooks.example.com:8443/in/abc"  # no credentials in logs


LIST = "e.g. notify: [{type: file, path: logs/approvals.jsonl}]"
URL = 'e.g. url: "http://127.0.0.1:9000/hook"'
CMD = 'e.g. command: ["notify-send", "approval needed"]'
PATH = "e.g. path: logs/approvals.jsonl (from the workspace root)"
RETRIES = "retries: 3 means up to 4 attempts (the default is 3)"
TYPES = "use command, webhook or file"
W = "{type: webhook, url: 'http://h'"
# fmt: off
BAD: list[tuple[str, str, str]] = [  # notify: YAML, message after "orchestrate.yaml: ", hint
    ("{type: file, path: a.jsonl}", "notify: must be a list of channels", LIST),
    ("[file]", 'notify[0]: must be a mapping, not "file"', LIST),
    ("[{path: a.jsonl}]", "notify[0]: missing type", "add type: command, webhook or file"),
    ("[{type: slack}]", 'notify[0].type: unknown channel type "slack"', TYPES),
    ("[{type: webhok}]", 'notify[0].type: unknown channel type "webhok"',
     f'did you mean "webhook"? ({TYPES})'),
    ("[{type: file, path: a}, {type: webhook}]", "notify[1].url: missing", URL),
    ("[{type: webhook, url: 'ftp://h/x'}]", 'notify[0].url: "ftp://h/x" is not an http(s) URL', URL),
    ("[{type: webhook, url: 8080}]", "notify[0].url: must be a string, not 8080", URL),
    (f"[{W}, retry: 3}}]", "notify[0].retry: unknown key",
     'did you mean "retries"? (webhook channels take url, headers, timeout, retries)'),
    ("[{type: file, path: a, timeout: 5s}]", "notify[0].timeout: unknown key", "file channels take path"),
    (f"[{W}, retries: -1}}]", "notify[0].retries: must be a whole number from 0 to 10, not -1", RETRIES),
    (f"[{W}, retries: yes}}]", "notify[0].retries: must be a whole number from 0 to 10, not True", RETRIES),
    (f"[{W}, timeout: 5 seconds}}]", 'notify[0].timeout: "5 seconds" is not a duration (use 5s)',
     "e.g. timeout: 5s"),
    ("[{type: command, command: [notify-send], timeout: 0}]", "notify[0].timeout: must be more than 0",
     "e.g. timeout: 5s (the default is 10s)"),
    (f"[{W}, headers: [X-Token]}}]",
     "notify[0].headers: must be a mapping of header names to values, not ['X-Token']",
     "e.g. headers: {X-Token: abc}"),
    (f"[{W}, headers: {{X-Token: [a]}}}}]", "notify[0].headers.X-Token: must be a string, not ['a']",
     'e.g. X-Token: "abc"'),
    ("[{type: command}]", "notify[0].command: missing", CMD),
    ("[{type: command, command: []}]", "notify[0].command: is empty", CMD),
    ("[{type: command, command: {run: x}}]", "notify[0].command: must be a list of strings, not {'run': 'x'}",
     CMD),
    ("""[{type: command, command: "notify-send 'unclosed"}]""",
     'notify[0].command: cannot split "notify-send \'unclosed": No closing quotation', CMD),
    ("[{type: file}]", "notify[0].path: missing", PATH),
    ("[{type: file, path: ''}]", 'notify[0].path: must be a file path, not ""', PATH),
]
# fmt: on


@pytest.mark.parametrize(("notify_yaml", "message", "hint"), BAD, ids=[m for _, m, _ in BAD])
def test_parse_channels_errors(tmp_path: Path, notify_yaml: str, message: str, hint: str) -> None:
    with pytest.raises(WorkspaceError) as caught:
        parse_channels(yaml.safe_load(notify_yaml), tmp_path)
    assert (caught.value.message, caught.value.hint) == (f"orchestrate.yaml: {message}", hint)
    assert "\n" not in caught.value.message
