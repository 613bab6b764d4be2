"""Secret masking: the streaming Masker, mask_text, and the pipe → log pump with a real child."""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
import time
import tracemalloc
from collections.abc import Iterable, Sequence
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrate.engine.masking import Masker, mask_text, pump, spawn_masked

LINUX_PROC = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


def stream(masker: Masker, parts: Iterable[bytes], truncated: bool = False) -> bytes:
    return b"".join(masker.feed(p) for p in parts) + masker.flush(truncated=truncated)


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def reference(data: bytes, secrets: Iterable[str], truncated: bool = False) -> bytes:
    """The documented semantics, by brute force on the whole text: every byte of every occurrence
    (of a secret or of a line of one) is masked, overlapping occurrences give one ``***``."""
    patterns = set()
    for s in secrets:
        raw = s.encode()
        if raw:
            patterns.add(raw)
            patterns.update(line for line in raw.splitlines() if line)
    spans = [
        (i, i + len(p)) for p in patterns for i in range(len(data) - len(p) + 1) if data.startswith(p, i)
    ]
    if truncated:  # a stream cut short: a tail that could begin a secret counts as one
        tails = [
            i
            for i in range(len(data))
            if any(len(p) > len(data) - i and p.startswith(data[i:]) for p in patterns)
        ]
        if tails:
            spans.append((tails[0], len(data)))
    out, pos, run = [], 0, None
    for start, end in sorted(spans):
        if run and start < run[1]:
            run = (run[0], max(run[1], end))
            continue
        if run:
            out += [data[pos : run[0]], b"***"]
            pos = run[1]
        run = (start, end)
    if run:
        out += [data[pos : run[0]], b"***"]
        pos = run[1]
    out.append(data[pos:])
    return b"".join(out)


# --- Masker ------------------------------------------------------------------------------------


def test_no_secrets_passes_data_through_and_holds_nothing_back() -> None:
    for secrets in ([], [""]):
        masker = Masker(secrets)
        chunk = b"anything at all *** \x00\xff"
        assert masker.feed(chunk) is chunk
        assert masker.flush() == b""
        assert masker.flush(truncated=True) == b""


def test_holds_back_at_most_longest_secret_minus_one_byte() -> None:
    masker = Masker(["short", "a-longer-one"])  # longest: 12 bytes
    assert masker.feed(b"x" * 100) == b"x" * 89
    assert masker.feed(b"y") == b"x"
    assert masker.feed(b"") == b""
    assert masker.flush() == b"x" * 10 + b"y"


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        (["hunter2"], "pw=hunter2; again hunter2!", "pw=***; again ***!"),
        (["tok"], "toktok", "******"),  # touching occurrences stay separate
        (["ab", "abcdef"], "abcdefab", "******"),  # the longer one wins where both start
        (["cdef", "abc"], "xabcdefx", "x***x"),  # overlapping: no "def" left visible
        (["abcd", "cdef"], "abcdef", "***"),  # a suffix of one is a prefix of the other
        (["aa"], "aaaaa", "***"),  # an overlapping chain is one run
        (["s3cr3t", "p@ss.w*rd(x)"], "a s3cr3t b p@ss.w*rd(x) c", "a *** b *** c"),  # regex metachars
    ],
)
def test_mask_text(secrets: list[str], text: str, expected: str) -> None:
    assert mask_text(text, secrets) == expected


def test_mask_text_without_secrets_or_matches_is_unchanged() -> None:
    assert mask_text("nothing here", []) == "nothing here"
    assert mask_text("nothing here", ["absent"]) == "nothing here"
    assert mask_text("", ["x"]) == ""


def test_mask_text_unicode_and_undecodable_values() -> None:
    assert mask_text("clé=pässwörd ✓", ["pässwörd"]) == "clé=*** ✓"
    # An environment value that was not UTF-8 arrives as surrogate escapes (os.environ does this);
    # it is masked as the raw bytes the child would print, and other such text survives unchanged.
    odd = b"\xffsecret\xfe".decode("utf-8", "surrogateescape")
    assert mask_text(f"v={odd} w=\udcff", [odd]) == "v=*** w=\udcff"
    masker = Masker([odd])
    assert stream(masker, [b"v=\xffsec", b"ret\xfe."]) == b"v=***."


def test_short_secrets_over_mask() -> None:
    # Documented trade-off: a one-character secret is masked everywhere it occurs.
    assert mask_text("a banana", ["a"]) == "*** b***n***n***"


def test_multi_line_secret_is_masked_whole_and_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEabc123\nXYZ789def\n-----END KEY-----\n"
    text = f"whole:\n{key}then one line: MIIEabc123 and XYZ789def\n"
    assert mask_text(text, [key]) == "whole:\n***then one line: *** and ***\n"
    # A tool printing with CRLF line ends still has every line masked.
    crlf = key.replace("\n", "\r\n")
    assert mask_text(crlf, [key]) == "***\r\n***\r\n***\r\n***\r\n"
    # A secret read from a file with a trailing newline is masked without it too.
    assert mask_text("token=abc123xyz end", ["abc123xyz\n"]) == "token=*** end"


@pytest.mark.parametrize(
    ("secrets", "text"),
    [
        (["s3cret-token"], b"A s3cret-token B s3cret-tokens3cret-token C s3cret-token"),
        (["ab\ncd", "xyz", "xyzzy"], b"1 ab\ncd 2 ab 3 cd 4 xyzzy 5 xyz 6 ab\ncdxyz"),
        (["abcd", "cdef", "c"], b"abcdef cdefab abcdabcd c"),
    ],
)
def test_split_at_every_offset(secrets: list[str], text: bytes) -> None:
    expected = reference(text, secrets)
    assert b"***" in expected
    for i in range(len(text) + 1):
        assert stream(Masker(secrets), split(text, [i])) == expected, i
        for j in range(i, len(text) + 1):
            assert stream(Masker(secrets), split(text, [i, j])) == expected, (i, j)
    assert stream(Masker(secrets), [bytes([b]) for b in text]) == expected  # one byte at a time


def test_truncated_flush_masks_a_secret_cut_short() -> None:
    masker = Masker(["hunter2-secret"])
    assert masker.feed(b"pw=hunter2-secret, again: hunter2-se") == b"pw=***, agai"  # 13 held back
    assert masker.flush(truncated=True) == b"n: ***"
    # At a real end of stream the stage's own output is kept as it printed it.
    masker.feed(b"again: hunter2-se")
    assert masker.flush() == b"again: hunter2-se"[-13:]


# Small alphabets make secrets overlap, nest and straddle boundaries all the time.
_alphabet = st.sampled_from("ab\nc")
_secrets = st.lists(st.text(_alphabet, min_size=0, max_size=6), max_size=4)


@settings(max_examples=400, deadline=None)
@given(
    secrets=_secrets,
    data=st.binary(max_size=80).map(lambda b: bytes(b"ab\nc-"[x % 5] for x in b)),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
    truncated=st.booleans(),
)
def test_stream_masks_exactly_as_the_whole_text(
    secrets: list[str], data: bytes, cuts: list[int], truncated: bool
) -> None:
    parts = split(data, [min(c, len(data)) for c in cuts])
    assert stream(Masker(secrets), parts, truncated) == reference(data, secrets, truncated)


def test_repr_does_not_reveal_secrets() -> None:
    assert "hunter2" not in repr(Masker(["hunter2"]))
    assert "hunter2" not in str(Masker(["hunter2"]))


# --- spawn_masked and pump ----------------------------------------------------------------------


def test_stage_that_echoes_a_secret_leaves_only_masks_in_its_log(tmp_path: Path) -> None:
    secret = "s3cr3t-Value_42"
    log = tmp_path / "stage.log"
    script = 'echo "token is $TOKEN"; printf %s "$TOKEN" | head -c 3; echo; printf "%s" "$TOKEN"'
    env = {"PATH": os.environ["PATH"], "TOKEN": secret}

    async def main() -> int:
        pid, read_fd = spawn_masked(["/bin/sh", "-c", script], env, str(log))
        await pump(read_fd, str(log), Masker([secret]))
        return pid

    pid = anyio.run(main)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    content = log.read_bytes()
    assert b"token is ***\n" in content
    assert secret.encode() not in content
    assert content == b"token is ***\ns3c\n***"  # a prefix the stage printed itself is not a secret


def test_pump_appends_to_an_existing_log_and_sees_stderr(tmp_path: Path) -> None:
    log = tmp_path / "stage.log"
    log.write_bytes(b"attempt 1\n")
    env = {"PATH": os.environ["PATH"], "K": "key-material"}

    async def main() -> int:
        pid, read_fd = spawn_masked(["sh", "-c", 'echo "out $K"; echo "err $K" >&2'], env, str(log))
        await pump(read_fd, str(log), Masker(["key-material"]))
        return pid

    os.waitpid(anyio.run(main), 0)
    assert log.read_bytes() == b"attempt 1\nout ***\nerr ***\n"


def test_cancelled_pump_writes_masked_held_bytes_and_closes_the_fd(tmp_path: Path) -> None:
    log = tmp_path / "stage.log"
    read_fd, write_fd = os.pipe()
    masker = Masker(["hunter2-secret"])

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, read_fd, str(log), masker)
                # Ends with the first part of a secret: the stage is cut off mid-print.
                os.write(write_fd, b"pass=hunter2-secret next=hunter2-se")
                with anyio.fail_after(5):  # the part already safe is in the log live, before EOF
                    while not (log.exists() and log.read_bytes().startswith(b"pass=***")):
                        await anyio.sleep(0.01)
                scope.cancel()
        assert scope.cancelled_caught

    try:
        anyio.run(main)
        assert log.read_bytes() == b"pass=*** next=***"
        # The read end is closed: with no reader left the pipe is broken for the writer.
        with pytest.raises(BrokenPipeError):
            os.write(write_fd, b"more")
    finally:
        os.close(write_fd)


@pytest.mark.skipif(not LINUX_PROC, reason="inspects /proc")
def test_spawn_masked_child_holds_only_the_write_end_as_stdout_and_stderr(tmp_path: Path) -> None:
    pid, read_fd = spawn_masked(["sleep", "10"], {"PATH": os.environ["PATH"]}, str(tmp_path / "log"))
    try:
        pipe = f"pipe:[{os.fstat(read_fd).st_ino}]"

        def pipe_ends(proc: str) -> dict[int, int]:
            ends = {}
            for name in os.listdir(f"/proc/{proc}/fd"):
                try:
                    if os.readlink(f"/proc/{proc}/fd/{name}") != pipe:
                        continue
                    info = Path(f"/proc/{proc}/fdinfo/{name}").read_text()
                except FileNotFoundError:  # the fd listdir itself used, closed since
                    continue
                match = re.search(r"flags:\s*([0-7]+)", info)
                assert match
                ends[int(name)] = int(match.group(1), 8) & os.O_ACCMODE
            return ends

        assert pipe_ends(str(pid)) == {1: os.O_WRONLY, 2: os.O_WRONLY}  # no read end in the child
        assert pipe_ends("self") == {read_fd: os.O_RDONLY}  # no write end left in this process
        assert os.readlink(f"/proc/{pid}/fd/0") == os.devnull
        assert os.getsid(pid) == pid  # own session, like every stage
        assert (tmp_path / "log").exists()  # created at start, for tail -f
    finally:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)


@pytest.mark.skipif(not LINUX_PROC, reason="counts /proc/self/fd")
def test_spawn_masked_command_not_found_leaks_no_fd(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        spawn_masked(["no-such-command-xyz"], {"PATH": "/nonexistent"}, str(tmp_path / "log"))
    assert len(os.listdir("/proc/self/fd")) == before


# --- throughput and memory ---------------------------------------------------------------------


@pytest.mark.slow
def test_200_mb_stream_keeps_memory_flat(capsys: pytest.CaptureFixture[str]) -> None:
    secret = b"ghp_Secret0123456789abcdefXYZ"
    half = len(secret) // 2
    line = b"2024-05-01T12:00:00 step 17/42 compiling module foo.bar (cache hit) ok\n"
    body = secret[half:] + b" " + line * 20 + b"auth " + secret + b"\n"
    chunk_size = 64 * 1024
    # Starts with the end of the secret and ends with its beginning: every chunk boundary splits one.
    filler = line * (chunk_size // len(line) + 1)
    chunk = body + filler[: chunk_size - len(body) - half] + secret[:half]
    assert len(chunk) == chunk_size
    n_chunks = 200 * 1024 * 1024 // chunk_size
    masker = Masker([secret.decode(), "another-secret-value", "x9"])
    masks = 0
    previous = masker.feed(secret[half:])  # the stream starts mid-secret: not a secret, passes through

    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        started = time.perf_counter()
        for _ in range(n_chunks):
            out = masker.feed(chunk)
            masks += out.count(b"***")
            # No secret anywhere in the output, including across two outputs.
            assert secret not in previous[-len(secret) :] + out
            previous = out
        masks += masker.flush().count(b"***")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert masks == 2 * n_chunks - 1  # one inside each chunk, one across each boundary
    growth = peak - base
    assert growth < 1024 * 1024, growth  # a few chunks' worth, whatever the stream's length
    with capsys.disabled():
        rate = n_chunks * chunk_size / 1e6 / elapsed
        print(f"\nmasking: {rate:.0f} MB/s, peak memory growth {growth / 1024:.0f} KiB")


def test_fresh_maskers_keep_their_own_held_back_bytes() -> None:
    """Concurrent stages share the executor's masker: each stream must get a fresh one."""
    shared = Masker(["hunter2"])
    one, two = shared.fresh(), shared.fresh()
    # each stream ends a chunk with the start of the secret and sends the rest later
    out_one = one.feed(b"stage one: hun")
    out_two = two.feed(b"stage two: hunt")
    out_one += one.feed(b"ter2 done\n") + one.flush()
    out_two += two.feed(b"er2 done\n") + two.flush()
    assert out_one == b"stage one: *** done\n"
    assert out_two == b"stage two: *** done\n"
