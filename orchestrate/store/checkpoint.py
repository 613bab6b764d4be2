"""checkpoints/<run>/: a portable, human-readable copy of a run (DESIGN §1, §3; issue 4).

Two files. ``checkpoint.json`` is a full snapshot (definition text, variables,
every stage with its attempts, outputs and times), always written atomically
(temp file, fsync, rename). ``journal.jsonl`` gets one line per transition
after the snapshot. Rewriting the whole snapshot at every transition would cost
O(stages) each time, O(stages²) for a run; instead the snapshot is rewritten
only when the journal has grown as large as it (and when the run ends), so the
bytes written stay linear in the number of transitions. Readers take the
snapshot and replay the journal lines whose ``seq`` is newer; a last line torn
by a crash is ignored. The format is ``checkpoint.schema.json`` beside this file.

The checkpoint is derived from the same events the store records, after it
(the store sink comes first), and is read back only by an explicit import
(``pipeline resume --checkpoint``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrate.atomic import write_atomically
from orchestrate.domain.errors import OrchestrateError
from orchestrate.domain.events import RunEvent, RunFinished, StageLogLine, from_record, kind_of
from orchestrate.domain.state import AttemptState, RunState, StageState, apply
from orchestrate.domain.status import RunStatus, StageStatus
from orchestrate.store.writer import payload

FORMAT = 1
SNAPSHOT = "checkpoint.json"
JOURNAL = "journal.jsonl"
MIN_JOURNAL = 64 * 1024  # below this the journal is never compacted: small runs write one snapshot
SCHEMA_PATH = Path(__file__).with_name("checkpoint.schema.json")


class CheckpointError(OrchestrateError):
    """A checkpoint that cannot be read: names the file and the position."""


@dataclass(frozen=True)
class Definition:
    pipeline: str
    version: int
    digest: str
    path: str
    text: str


def snapshot(state: RunState, definition: Definition, seq: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "seq": seq,
        "run": {
            "id": state.run_id,
            "pipeline": state.pipeline,
            "version": definition.version,
            "status": state.status.value,
            "reason": state.reason,
            "variables": dict(state.variables),
            "created_at": state.created_at,
            "started_at": state.started_at,
            "finished_at": state.finished_at,
            "started_by": state.started_by,
            "triggered_by": state.triggered_by,
            "parent_run_id": state.parent_run_id,
        },
        "definition": {"path": definition.path, "digest": definition.digest, "text": definition.text},
        "stages": [
            {
                "name": s.name,
                "status": s.status.value,
                "reason": s.reason,
                "outputs": dict(s.outputs),
                "attempts": [
                    {
                        "attempt": a.attempt,
                        "status": a.status.value,
                        "started_at": a.started_at,
                        "finished_at": a.finished_at,
                        "exit_code": a.exit_code,
                        "error": a.error,
                        "log_path": a.log_path,
                        "pid": a.pid,
                    }
                    for a in s.attempts
                ],
            }
            for s in state.stages.values()
        ],
    }


class CheckpointWriter:
    """An event sink that keeps checkpoints/<run>/ current: snapshot + journal."""

    def __init__(self, folder: Path, state: RunState, definition: Definition) -> None:
        self.folder = folder
        self.state = state
        self.definition = definition
        self.seq = 0
        self.bytes_written = 0
        folder.mkdir(parents=True, exist_ok=True)
        self._journal = open(folder / JOURNAL, "wb")  # noqa: SIM115 - held for the run, closed at its end
        self._journal_bytes = 0
        self._snapshot_bytes = 0
        self._compact()

    def emit(self, event: RunEvent) -> None:
        if isinstance(event, StageLogLine):
            return
        self.state = apply(self.state, event)
        self.seq += 1
        line = json.dumps({"seq": self.seq, "kind": kind_of(event), **payload(event)}, separators=(",", ":"))
        data = line.encode() + b"\n"
        self._journal.write(data)
        self._journal.flush()  # in the page cache: survives this process dying, like the store's commits
        self._journal_bytes += len(data)
        self.bytes_written += len(data)
        if isinstance(event, RunFinished):
            self._compact()
            self._journal.close()  # the run is over: the snapshot alone describes it
        elif self._journal_bytes > max(MIN_JOURNAL, self._snapshot_bytes):
            self._compact()

    def _compact(self) -> None:
        # Indented (for people) once the run is over; compact meanwhile: the C encoder is ~10x faster.
        indent = 1 if self.state.done else None
        data = json.dumps(snapshot(self.state, self.definition, self.seq), indent=indent).encode() + b"\n"
        write_atomically(self.folder / SNAPSHOT, data)
        # The snapshot now holds every journaled event: start the journal again.
        self._journal.seek(0)
        self._journal.truncate()
        self._snapshot_bytes = len(data)
        self._journal_bytes = 0
        self.bytes_written += len(data)

    def close(self) -> None:
        if not self._journal.closed:
            self._journal.close()


def _state_from(data: Mapping[str, Any]) -> RunState:
    run = data["run"]
    stages = {
        s["name"]: StageState(
            name=s["name"],
            status=StageStatus(s["status"]),
            attempts=tuple(
                AttemptState(
                    attempt=a["attempt"],
                    started_at=a["started_at"],
                    finished_at=a.get("finished_at"),
                    status=StageStatus(a["status"]),
                    exit_code=a.get("exit_code"),
                    error=a.get("error"),
                    log_path=a.get("log_path", ""),
                    pid=a.get("pid"),
                )
                for a in s["attempts"]
            ),
            reason=s.get("reason"),
            outputs=s["outputs"],
        )
        for s in data["stages"]
    }
    return RunState(
        run_id=run["id"],
        pipeline=run["pipeline"],
        stages=stages,
        status=RunStatus(run["status"]),
        created_at=run["created_at"],
        started_at=run.get("started_at"),
        finished_at=run.get("finished_at"),
        reason=run.get("reason"),
        variables=run["variables"],
        started_by=run.get("started_by"),
        triggered_by=run.get("triggered_by"),
        parent_run_id=run.get("parent_run_id"),
        version=run["version"],
    )


def read_checkpoint(path: Path) -> tuple[RunState, Definition]:
    """The run a checkpoint describes (snapshot + journal). CheckpointError names file and position."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file", hint="give the path of a checkpoint.json") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder", hint=f"did you mean {path / SNAPSHOT}?") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = (
            f"line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else f"byte {e.start}"
        )
        why = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise CheckpointError(
            f"{path}: not a valid checkpoint: {why} at {where} (of {len(raw)} bytes)",
            hint="the file is truncated or corrupt; an older copy, or the run's store, may still have the run",
        ) from None
    _validate(path, data)
    state = _state_from(data)
    d = data["definition"]
    definition = Definition(state.pipeline, data["run"]["version"], d["digest"], d["path"], d["text"])
    journal = path.with_name(JOURNAL)
    if journal.exists():
        lines = journal.read_bytes().split(b"\n")
        complete = lines[:-1]  # the last piece has no newline: empty, or torn by a crash mid-write
        for number, line in enumerate(complete, 1):
            try:
                record = json.loads(line)
                if record["seq"] <= data["seq"]:
                    continue  # already in the snapshot (a crash between snapshot and truncation)
                kind = record.pop("kind")
                record.pop("seq")
                state = apply(state, from_record(state.run_id, kind, record))
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"{journal}:{number}: not a valid journal line ({e})") from None
    return state, definition


def _validate(path: Path, data: Any) -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise CheckpointError(f"{path}: not a valid checkpoint: {where or 'top level'}: {error.message}")
