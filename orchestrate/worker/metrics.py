"""``GET /metrics``: the store and the worker in the Prometheus text format (prometheus-client).

Read from the store at scrape time, so the figures cover every run, whoever started it:

    orchestrate_runs{pipeline,status}                 runs in the store (gauge)
    orchestrate_stage_duration_seconds{pipeline}      finished stages' durations (histogram)
    orchestrate_queue_length                          queued runs
    orchestrate_approvals_pending                     approval requests awaiting a decision
    orchestrate_worker_active_runs                    runs this worker's children are running
    orchestrate_worker_loop_lag_seconds               how late the last pass started (after its wake-up or sleep)
    orchestrate_worker_pass_duration_seconds          how long the last pass took
    orchestrate_worker_last_tick_timestamp_seconds    when the last pass ended
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from orchestrate.worker.service import Worker

CONTENT_TYPE = CONTENT_TYPE_LATEST
BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0)


class StoreCollector:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        scheduling = self.worker.scheduling
        by_status, queued, approvals = scheduling.gauges()
        runs = GaugeMetricFamily("orchestrate_runs", "Runs in the store", labels=["pipeline", "status"])
        for pipeline, status, count in by_status:
            runs.add_metric([pipeline, status], count)
        yield runs
        yield _histogram(scheduling.stage_durations())
        yield GaugeMetricFamily("orchestrate_queue_length", "Queued runs waiting to start", value=queued)
        yield GaugeMetricFamily(
            "orchestrate_approvals_pending", "Approval requests awaiting a decision", value=approvals
        )
        yield GaugeMetricFamily(
            "orchestrate_worker_active_runs",
            "Runs this worker's child processes are running",
            value=len(self.worker.children.live),
        )
        yield GaugeMetricFamily(
            "orchestrate_worker_loop_lag_seconds",
            "How late the worker's last pass started after it was due (a wake-up, or the end of its sleep)",
            value=self.worker.loop_lag,
        )
        yield GaugeMetricFamily(
            "orchestrate_worker_pass_duration_seconds",
            "How long the worker's last pass took",
            value=self.worker.pass_seconds,
        )
        if self.worker.last_tick is not None:
            yield GaugeMetricFamily(
                "orchestrate_worker_last_tick_timestamp_seconds",
                "When the worker's last pass ended (Unix time)",
                value=self.worker.last_tick,
            )


def _histogram(durations: list[tuple[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "orchestrate_stage_duration_seconds", "Durations of finished stages", labels=["pipeline"]
    )
    per: dict[str, list[float]] = {}
    for pipeline, seconds in durations:
        per.setdefault(pipeline, []).append(max(0.0, seconds))
    for pipeline, values in sorted(per.items()):
        values.sort()
        buckets = [(_le(b), float(bisect.bisect_right(values, b))) for b in BUCKETS]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([pipeline], buckets, sum(values))
    return family


def _le(bound: float) -> str:
    return repr(bound)


def render(worker: Worker) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(worker))  # type: ignore[arg-type]
    return generate_latest(registry)
