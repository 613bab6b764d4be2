from __future__ import annotations

import anyio

from orchestrate.domain.events import Recorder, RunFinished, StageFinished, StageStarted
from orchestrate.domain.status import OnFailure
from orchestrate.engine.scheduler import Executor, RunConfig, RunResult, Scheduler
from orchestrate.spec.model import PipelineSpec, RetrySpec, StageKind, StageSpec


def stage(name: str, run: str = "true", needs: tuple[str, ...] = (), **kw: object) -> StageSpec:
    return StageSpec(name=name, kind=StageKind.RUN, needs=needs, run=run, **kw)  # type: ignore[arg-type]


def spec(*stages: StageSpec, **kw: object) -> PipelineSpec:
    return PipelineSpec(name="t", stages=tuple(stages), path="t.yaml", **kw)  # type: ignore[arg-type]


def run(
    pipeline: PipelineSpec,
    tmp_path: object,
    executor: Executor | None = None,
    **cfg: object,
) -> tuple[RunResult, Recorder]:
    rec = Recorder()
    config = RunConfig(
        run_id="r1", spec=pipeline, log_dir=f"{tmp_path}/logs/r1", workspace=str(tmp_path), **cfg
    )  # type: ignore[arg-type]
    result = anyio.run(Scheduler(config, rec, executor).run)
    return result, rec


def finished(rec: Recorder) -> dict[str, StageFinished]:
    """The last StageFinished of each stage."""
    return {e.stage: e for e in rec.events if isinstance(e, StageFinished)}


def spans(rec: Recorder) -> dict[str, tuple[float, float]]:
    start = {e.stage: e.at for e in rec.events if isinstance(e, StageStarted)}
    return {name: (start[name], e.at) for name, e in finished(rec).items()}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def last(rec: Recorder) -> RunFinished:
    event = rec.events[-1]
    assert isinstance(event, RunFinished)
    return event


__all__ = ["OnFailure", "RetrySpec", "finished", "last", "overlap", "run", "spans", "spec", "stage"]
