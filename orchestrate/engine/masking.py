"""Secret masking for stage output: a streaming filter between a stage's pipe and its log file.

A stage that carries secrets cannot write straight to its log (see ``process.py``): its
stdout and stderr go to a pipe instead, and :func:`pump` copies the pipe to the log through
a :class:`Masker`, which replaces every occurrence of a secret with ``***``. Stages without
secrets keep the direct path, which costs nothing.

What is masked: each secret's bytes (UTF-8; ``surrogateescape`` for values that came from
the environment as undecodable bytes), and for a multi-line secret each of its lines too,
since tools print keys and certificates line by line. Only the raw value is masked, not
encodings of it (base64, URL-quoting, JSON escapes): a stage that transforms a secret before
printing it is not protected. Every non-empty secret is masked, however short, so a very
short secret (``"1"``, ``"ab"``) turns ordinary text into ``***`` wherever it occurs: that
over-masking is preferred to leaking a short password.

Overlapping occurrences: every byte that belongs to any occurrence of any secret is masked,
and occurrences that overlap become one ``***`` (so with secrets ``abcd`` and ``cdef`` the
text ``abcdef`` becomes ``***``, not ``***ef``, and a secret contained in a longer one never
leaves the longer one's remainder visible). Occurrences that merely touch stay separate
(``tok`` twice in ``toktok`` gives ``******``). The stream is masked exactly as the whole text
would be, wherever the chunk boundaries fall.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterable, Mapping, Sequence

import anyio

from orchestrate.engine.process import _executable

MASK = b"***"
_READ_SIZE = 65536


def _encode(secret: str) -> bytes:
    # surrogateescape gives back the exact bytes of an environment value that was not valid
    # UTF-8 (os.environ decodes that way), which is what the child process would print.
    try:
        return secret.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates outside the escape range: keep them, never fail
        return secret.encode("utf-8", "surrogatepass")


def _patterns(secrets: Iterable[str]) -> list[bytes]:
    found: set[bytes] = set()
    for secret in secrets:
        raw = _encode(secret)
        if not raw:
            continue
        found.add(raw)
        # bytes.splitlines splits on \n, \r and \r\n only (str.splitlines would also split on
        # \x0b, \x1c, U+2028 ... which no tool uses as a line break).
        found.update(line for line in raw.splitlines() if line)
    # Longest first: at a given position the regex alternation takes the first alternative that
    # matches, which must be the longest secret starting there.
    return sorted(found, key=lambda p: (-len(p), p))


class Masker:
    """Replaces every occurrence of the secrets with ``***`` in a stream of bytes.

    ``feed`` returns what is safe to write now and holds back at most (longest secret - 1)
    bytes that could be the beginning of a secret split across chunks; ``flush`` returns the
    rest at the end of the stream. Memory is bounded by the chunk size plus twice the longest
    secret, whatever the length of the stream.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        patterns = _patterns(secrets)
        self._patterns = patterns
        self._pattern = re.compile(b"|".join(map(re.escape, patterns))) if patterns else None
        self._longest = len(patterns[0]) if patterns else 0
        # _held = context + pending. Context: up to longest-1 bytes already written, kept only so
        # that an occurrence which began inside a ``***`` already written can be recognised and
        # its remainder swallowed. Pending: bytes not written yet. _base: where pending starts.
        self._held = b""
        self._base = 0

    def fresh(self) -> Masker:
        """A masker for another stream, sharing the compiled secrets but not the held-back bytes.

        Concurrent stages must each have their own: the bytes one holds back belong to its stream.
        """
        other = Masker(())
        other._patterns, other._pattern, other._longest = self._patterns, self._pattern, self._longest
        return other

    def __repr__(self) -> str:  # never show the pattern: it spells out every secret
        return f"<Masker secrets={'yes' if self._pattern else 'none'}>"

    def feed(self, chunk: bytes) -> bytes:
        """Mask ``chunk`` (following whatever was fed before); returns the bytes safe to write now."""
        if self._pattern is None:
            return chunk
        buf = self._held + chunk if self._held else chunk
        # An occurrence starting before ``cut`` is entirely inside buf (no secret is longer than
        # longest), so it has been seen whole; one starting at or after it may continue in the
        # next chunk and must wait.
        cut = max(self._base, len(buf) - (self._longest - 1))
        out, stop = self._mask(buf, cut)
        start = max(0, stop - (self._longest - 1))
        self._held = buf[start:]
        self._base = stop - start
        return out

    def flush(self, *, truncated: bool = False) -> bytes:
        """End of stream: the held-back bytes, masked. The masker is then ready for a new stream.

        ``truncated``: the stream was cut before its end (the reader was cancelled), so the rest
        of a secret may have been printed but not read. Held-back bytes that end the stream and
        could begin a secret are then masked too, instead of leaving up to longest-1 characters
        of it in the log. Without it, the output is exactly what the stage printed, masked.
        """
        if self._pattern is None or not self._held:
            return b""
        buf = self._held
        partial = self._partial_start(buf) if truncated else len(buf)
        out, stop = self._mask(buf, partial)
        # stop > partial: the partial secret overlaps the last ``***`` written, which covers it.
        if stop == partial < len(buf):
            out += MASK
        self._held = b""
        self._base = 0
        return out

    def _partial_start(self, buf: bytes) -> int:
        """Where the longest suffix of ``buf`` that is a proper prefix of a secret begins (len(buf) if none)."""
        n = len(buf)
        for start in range(max(0, n - (self._longest - 1)), n):
            rest = buf[start:]
            if any(len(p) > len(rest) and p.startswith(rest) for p in self._patterns):
                return start
        return n

    def _mask(self, buf: bytes, cut: int) -> tuple[bytes, int]:
        """Masked ``buf[base:stop]`` and ``stop``: cut, or further when an occurrence runs past it."""
        assert self._pattern is not None
        search = self._pattern.search
        base = self._base
        parts: list[bytes] = []
        pos = base  # next byte of buf to write
        first = last = -1  # the run of overlapping occurrences being gathered
        at = 0
        while (m := search(buf, at)) is not None:
            start, end = m.span()
            # Next search from start + 1, not end: an occurrence may begin inside this one.
            # Linear all the same: matches are rare, and each rescan is shorter than a secret.
            at = start + 1
            if end <= base:
                continue  # wholly inside the context: dealt with by an earlier feed
            if start < last:  # overlaps the run: extend it
                last = max(last, end)
                continue
            if last >= 0:
                pos = self._write_run(buf, parts, pos, first, last, base)
                first = last = -1
            if start >= cut:
                break  # may be incomplete: held back with everything after it
            first, last = start, end
        if last >= 0:
            pos = self._write_run(buf, parts, pos, first, last, base)
        stop = max(pos, cut)
        parts.append(buf[pos:stop])
        return b"".join(parts), stop

    @staticmethod
    def _write_run(buf: bytes, parts: list[bytes], pos: int, first: int, last: int, base: int) -> int:
        if first >= base:
            parts.append(buf[pos:first])
            parts.append(MASK)
        # else: the run began in the context, so its remainder is swallowed: it continues the
        # ``***`` that ends the context. It must: context bytes were written either plain, being
        # before a cut, where every occurrence fitted in that buffer and so ended by the stop
        # (now base); or inside a run written past the cut, which ended exactly at base.
        return last


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (stage outputs, error messages, commands)."""
    masker = Masker(secrets)
    raw = _encode(text)
    masked = masker.feed(raw) + masker.flush()
    # surrogateescape both ways: text that holds undecodable bytes comes back unchanged but for the masks.
    return masked.decode("utf-8", "surrogateescape")


async def pump(read_fd: int, log_path: str, masker: Masker) -> None:
    """Copy a stage's output pipe into its log file through ``masker`` until EOF, then close ``read_fd``.

    Each chunk is flushed as it arrives so that ``tail -f`` and the live view see output as it is
    printed. On cancellation (or any error) nothing more is read, but the bytes the masker holds
    back are masked and written, and the fd is closed, before re-raising.
    """
    try:
        os.set_blocking(read_fd, False)  # wait_readable then read: never block the event loop
        with open(log_path, "ab") as log:
            try:
                while True:
                    await anyio.wait_readable(read_fd)
                    try:
                        chunk = os.read(read_fd, _READ_SIZE)
                    except BlockingIOError:  # spurious wake-up
                        continue
                    if not chunk:
                        break
                    if out := masker.feed(chunk):
                        log.write(out)
                        log.flush()
            except BaseException:
                # Synchronous, so it completes inside a cancelled scope. truncated: a secret may
                # be half read, and its first half must not reach the log unmasked.
                log.write(masker.flush(truncated=True))
                raise
            log.write(masker.flush())
    finally:
        os.close(read_fd)


def _above_stdio(read_fd: int, write_fd: int) -> tuple[int, int]:
    """The pipe's ends, renumbered to 3 or more (still close-on-exec) if either is 0, 1 or 2.

    A process running with stdin/stdout/stderr closed gets such numbers for a new pipe; the file
    actions that set up the child's 0, 1 and 2 would then overwrite that end or, for a dup2 onto
    its own number, leave it close-on-exec.
    """
    if read_fd > 2 and write_fd > 2:
        return read_fd, write_fd
    moved: list[int] = []
    try:
        for fd in (read_fd, write_fd):
            moved.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3))
    except BaseException:
        for fd in moved:
            os.close(fd)
        raise
    finally:
        os.close(read_fd)
        os.close(write_fd)
    return moved[0], moved[1]


def spawn_masked(argv: Sequence[str], env: Mapping[str, str], log_path: str) -> tuple[int, int]:
    """Start ``argv`` like ``process._spawn`` but with stdout and stderr on a pipe; returns (pid, read_fd).

    The caller runs :func:`pump` on ``read_fd`` to fill ``log_path`` and waits for the pid as for
    any stage. Both pipe ends are close-on-exec, so the child keeps only the write end, as its fds
    1 and 2 (dup2 clears the flag on the copies); the parent closes its write end here, so that
    the pump sees EOF once the child and everything it started have exited.
    """
    # Create the log now: it exists (for tail -f, the live view) from the moment the stage starts,
    # and a log that cannot be written fails here, before a child runs with nowhere to write.
    os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    read_fd, write_fd = _above_stdio(*os.pipe2(os.O_CLOEXEC))
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, write_fd, 1),
            (os.POSIX_SPAWN_DUP2, write_fd, 2),
        ]
        program = _executable(argv[0], env.get("PATH"))
        pid = os.posix_spawn(program, list(argv), dict(env), file_actions=actions, setsid=True)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return pid, read_fd
