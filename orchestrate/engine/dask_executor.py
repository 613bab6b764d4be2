"""``executor: dask``: a stage's command runs on a Dask distributed worker (DESIGN §11).

DaskExecutor   one attempt = one Dask task (``engine.dask_task.run_stage``) that runs the
               command in a subprocess on a worker; its output comes back in chunks over a
               ``distributed.Queue`` and is written (masked) to the stage log here, so the
               log, ``tail -f`` and usage parsing work as for a local stage. The result carries
               the exit code and the text of ``$ORCHESTRATE_OUTPUT``, written to the local
               output file for the stage runner to read.
ByStage        sends the stages named ``executor: dask`` to the DaskExecutor, the rest to the
               local one.

Timeouts and cancellation cancel the attempt's task scope; the executor then sets the
attempt's ``distributed.Event``, which the remote task polls: SIGTERM to the command's
process group, ``grace`` seconds, SIGKILL; the Dask future is cancelled as well (a task
still queued never starts). The run waits, bounded, for the remote process to be gone.

``distributed`` is imported by this module, which only ``services.dask_cluster`` imports,
and only for a run with a dask stage.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import IO, Any

import anyio
import cloudpickle
from distributed import Client, Event, Future, Queue

from orchestrate.engine import dask_task
from orchestrate.engine.config import Executor, Job, safe_name
from orchestrate.engine.masking import Masker
from orchestrate.engine.process import ProcessResult

POLL = 0.25  # seconds between reads of the output queue while the command runs
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler before dask stages fail
SETTLE = 5.0  # seconds, after grace, to wait for a stopped remote command to report back

# The task's code travels with it: workers need distributed, not orchestrate.
cloudpickle.register_pickle_by_value(dask_task)
# distributed logs connection chatter (a closing client, a lost comm) at INFO/WARNING on stderr,
# which would interleave with the run's own view; failures reach the stage log and error instead.
logging.getLogger("distributed").setLevel(logging.ERROR)


class DaskExecutor:
    def __init__(self, address: str, cwd: str, secrets: Sequence[str] = (), grace: float = 5.0) -> None:
        self.address = address
        self.cwd = cwd
        self.secrets = tuple(secrets)
        self.grace = grace
        self._client: Client | None = None
        self._failed: str | None = None  # why the scheduler was unreachable: every dask stage fails
        self._lock: anyio.Lock | None = None

    async def run(self, job: Job) -> ProcessResult:
        client = await self._connect()
        if client is None:
            return _fail(job, self._failed or "no Dask client")
        key = f"orchestrate-{safe_name(job.stage)}-{job.attempt}-{uuid.uuid4().hex[:12]}"
        try:
            queue = await _queue(f"{key}-out", client)
        except Exception as e:  # the scheduler went away since we connected
            return _fail(job, f"dask: cannot use the scheduler at {self.address}: {type(e).__name__}: {e}")
        cancel = Event(f"{key}-cancel", client=client)
        future = client.submit(
            dask_task.run_stage,
            list(job.argv),
            dict(job.env),
            self.cwd,
            queue.name,
            cancel.name,
            self.grace,
            key=key,
            pure=False,
        )
        # One masker per attempt: it holds back the start of a possible secret between chunks.
        masker = Masker(self.secrets) if self.secrets else None
        reader = _Reader(job, masker)
        lost: str | None = None
        try:
            with open(job.log_path, "ab") as log:
                reader.log = log
                try:
                    while True:
                        finished = future.done()
                        reader.take(await queue.get(batch=True))
                        if finished:
                            break
                        with anyio.move_on_after(POLL):
                            await _settled(future)
                except BaseException as e:
                    with anyio.CancelScope(shield=True):
                        await self._stop(client, future, cancel, queue, reader)
                    if _ours(e):
                        raise
                    # The cluster failed us (a lost connection, a future distributed dropped): an
                    # outcome of this stage, not a bug, and never a silent cancellation of the run.
                    lost = f"dask: lost the task on {self.address}: {type(e).__name__}: {e}"
                finally:
                    if masker is not None:
                        log.write(masker.flush(truncated=future.status != "finished"))
                if lost is not None:
                    job.on_start(None)
                    reader.note(lost)
                    return ProcessResult(1, lost)
                return await self._result(job, future, reader)
        finally:
            with anyio.CancelScope(shield=True):
                await _quietly(queue.close)

    async def _result(self, job: Job, future: Future, reader: _Reader) -> ProcessResult:
        job.on_start(None)
        if future.status != "finished":
            error = await _quietly(future.exception)
            message = f"dask: the task {future.status}: {type(error).__name__}: {error}"
            reader.note(message)
            return ProcessResult(1, message)
        result: dict[str, Any] = await future
        if result["outputs"]:
            with open(job.output_path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(result["outputs"])
        return ProcessResult(int(result["exit_code"]), result["error"])

    async def _stop(
        self, client: Client, future: Future, cancel: Event, queue: Queue, reader: _Reader
    ) -> None:
        """Timeout or cancel: the remote process group is stopped (TERM, grace, KILL) before we return."""
        if not reader.started:
            await _quietly(client.cancel, future)  # queued: it never starts; starting: it sees the release
        await _quietly(cancel.set)
        with anyio.move_on_after(self.grace + SETTLE):
            while not future.done():
                reader.take(await _quietly(queue.get, batch=True) or [])
                with anyio.move_on_after(POLL):
                    await _settled(future)
        reader.take(await _quietly(queue.get, batch=True) or [])
        await _quietly(client.cancel, future)
        await _quietly(cancel.clear)  # the scheduler forgets the event

    async def _connect(self) -> Client | None:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._client is None and self._failed is None:
                try:
                    with anyio.fail_after(CONNECT_TIMEOUT + 1):
                        self._client = await Client(
                            self.address, asynchronous=True, timeout=CONNECT_TIMEOUT, set_as_default=False
                        )
                except (OSError, TimeoutError, ValueError) as e:
                    self._failed = (
                        f"cannot reach the Dask scheduler at {self.address}: {e or type(e).__name__}"
                    )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._client.close()
            self._client = None


class _Reader:
    """Messages of the remote task, into the local stage log."""

    def __init__(self, job: Job, masker: Masker | None) -> None:
        self.job = job
        self.masker = masker
        self.log: IO[bytes] | None = None
        self.started = False

    def take(self, messages: list[dict[str, Any]]) -> None:
        assert self.log is not None
        for message in messages:
            if message.get("t") == "start":
                self.started = True
                pid = message.get("pid")
                self.log.write(
                    f"--- orchestrate: dask worker {message['worker']} ({message['address']}) on "
                    f"{message['host']}, pid {pid if pid is not None else '-'} ---\n".encode()
                )
                self.job.on_start(None)  # the pid is the worker's: never one to signal from here
            elif message.get("t") == "out":
                data: bytes = message["data"]
                self.log.write(self.masker.feed(data) if self.masker is not None else data)
        if messages:
            self.log.flush()

    def note(self, line: str) -> None:
        if self.log is not None:
            self.log.write(f"orchestrate: {line}\n".encode())
            self.log.flush()


class ByStage:
    """The stages named in ``remote`` on one executor (Dask), the rest on ``local``."""

    def __init__(self, local: Executor, remote: DaskExecutor, stages: frozenset[str]) -> None:
        self.local = local
        self.remote = remote
        self.stages = stages

    async def run(self, job: Job) -> ProcessResult:
        return await (self.remote if job.stage in self.stages else self.local).run(job)

    async def aclose(self) -> None:
        await self.remote.aclose()


def _fail(job: Job, message: str) -> ProcessResult:
    job.on_start(None)
    with open(job.log_path, "a", encoding="utf-8") as log:
        log.write(f"orchestrate: {message}\n")
    return ProcessResult(1, message)


def _ours(error: BaseException) -> bool:
    """This task was cancelled (a timeout, a cancel), as opposed to a failure or a future cancelled inside distributed."""
    if not isinstance(error, asyncio.CancelledError):
        return not isinstance(error, Exception)  # KeyboardInterrupt, SystemExit: never swallowed
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def _queue(name: str, client: Client) -> Queue:
    """A queue that exists on the scheduler (created once: ``await Queue(...)`` would create it twice,
    and a queue created twice is never deleted by the two closes that follow)."""
    queue = Queue(name, client=client)  # an asynchronous client: the creation is under way
    started = getattr(queue, "_started", None)
    if started is not None:
        await started
    return queue


async def _settled(future: Future) -> None:
    """Until the future is done, whatever its outcome (an error is read from it afterwards)."""
    try:
        await future
    except Exception:
        pass


async def _quietly(call: Any, *args: Any, **kwargs: Any) -> Any:
    """A best-effort cluster call while stopping: a lost scheduler must not hide the stop itself."""
    try:
        result = call(*args, **kwargs)
        if hasattr(result, "__await__"):
            result = await result
        return result
    except Exception:
        return None


__all__ = ["ByStage", "DaskExecutor"]
