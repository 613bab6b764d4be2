"""`orchestrate metrics` and `orchestrate metrics record`, through the sub-app and the main app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrate.cli.metrics import app as metrics_app
from orchestrate.domain.status import ExitCode


def invoke(*args: str) -> Any:
    return CliRunner().invoke(metrics_app, list(args), catch_exceptions=False)


def record(*extra: str) -> Any:
    return invoke("record", "--task-type", "impl", "--duration", "12.5", "--status", "completed", *extra)


def test_an_empty_workspace_says_how_metrics_arrive(workspace: Path) -> None:
    result = invoke()
    assert result.exit_code == 0
    assert "no metrics yet: runs record one per stage attempt" in result.output
    assert "orchestrate metrics record --task-type" in result.output
    data = json.loads(invoke("--json").stdout)
    assert data["execution_time"]["count"] == 0 and data["success_rate"]["total"] == 0
    assert data["by_task_type"] == {} and len(data["daily"]) == 14


def test_record_then_summarize(workspace: Path) -> None:
    result = record(
        "--model", "claude", "--input-tokens", "1000", "--output-tokens", "200", "--cost-usd", "0.02"
    )
    assert result.exit_code == 0
    assert result.output.startswith("recorded task ") and "(impl, 12.5 s, completed)" in result.output
    assert record("--status", "failed", "--duration", "30", "--executor", "cursor").exit_code == 0
    row = json.loads(
        invoke(
            "record",
            *("--task-type", "spec", "--duration", "3", "--status", "timed_out", "--task-id", "job-7"),
            *("--prompt-variant", "b", "--skill-version", "v2", "--json"),
        ).stdout
    )
    assert row["task_id"] == "job-7" and row["status"] == "timed_out" and row["prompt_variant"] == "b"
    assert row["skill_version"] == "v2" and row["pipeline"] is None

    data = json.loads(invoke("--json").stdout)
    assert data["execution_time"]["count"] == 3
    assert data["execution_time"]["p50_seconds"] == 12.5
    assert data["success_rate"] == {
        "completed": 1,
        "failed": 2,
        "total": 3,
        "rate": 1 / 3,
        "cancelled": 0,
        "timed_out": 1,
    }
    assert data["usage"] == {"input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.02}
    assert data["by_model"]["claude"]["count"] == 1
    assert set(data["by_task_type"]) == {"impl", "spec"}

    by_variant = json.loads(invoke("--by", "variant", "--json").stdout)
    assert set(by_variant["group_by"]) == {"b", "(none)"}
    failed = json.loads(invoke("--status", "failed", "--json").stdout)
    assert failed["execution_time"]["count"] == 2  # timed_out counts as failed
    assert json.loads(invoke("--pipeline", "ci", "--json").stdout)["execution_time"]["count"] == 0
    assert json.loads(invoke("--since", "1h", "--json").stdout)["execution_time"]["count"] == 3
    assert json.loads(invoke("--since", "2020-01-01", "--json").stdout)["filters"]["since"].startswith(
        "2020-01-01"
    )


def test_the_view_shows_percentiles_success_usage_breakdown_and_days(workspace: Path) -> None:
    for duration, status in (("10", "completed"), ("20", "completed"), ("40", "failed")):
        assert record("--duration", duration, "--status", status, "--model", "gpt").exit_code == 0
    result = invoke()
    assert result.exit_code == 0
    out = result.output
    assert "Task metrics  3 tasks" in out
    assert "P50 20.0s" in out and "P95 40.0s" in out and "P99 40.0s" in out and "max 40.0s" in out
    assert "66.7%  2 completed of 3" in out
    assert "by task type" in out and "by model" in out and "gpt" in out
    assert "last 14 days" in out and "tasks" in out and "success" in out
    by = invoke("--by", "executor").output
    assert "by executor" in by and "by task type" not in by
    assert "no task metrics match pipeline nope" in invoke("--pipeline", "nope").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "colour"), 'error: --by "colour": not one of task_type, model, executor'),
        (("--since", "yesterday"), 'error: --since "yesterday": not a duration'),
        (("--status", "ok"), 'error: --status "ok": not one of completed'),
        (("--watch", "--json"), "error: --watch and --json do not go together"),
        (
            ("record", "--task-type", "impl", "--duration", "-1", "--status", "completed"),
            "error: duration -1.0: must be a number ≥ 0",
        ),
        (("record", "--task-type", "impl", "--duration", "1", "--status", "done"), 'error: --status "done"'),
        (
            ("record", "--task-type", "impl", "--duration", "1", "--status", "completed", "--cost-usd", "-2"),
            "error: cost -2.0",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workspace: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert not (workspace / "orchestrate.db").exists() or "record" in args


def test_watch_redraws_until_ctrl_c(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrate.metrics import service

    calls: list[object] = []
    summarize = service.summarize

    def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(args)
        return summarize(*args, **kwargs)

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(service, "summarize", counting)
    monkeypatch.setattr("orchestrate.ui.metrics_view.time.sleep", sleep)
    assert record().exit_code == 0
    result = invoke("--watch")
    assert result.exit_code == 0  # Ctrl-C is how a watch ends
    assert sleeps == [2.0, 2.0] and len(calls) == 2
    assert "Task metrics  1 task" in result.output


def test_help_has_examples() -> None:
    for args in ((), ("record",)):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Example" in result.output


def test_through_the_main_app(workspace: Path) -> None:
    from orchestrate.cli.app import app

    if not any(group.name == "metrics" for group in app.registered_groups):
        pytest.skip("orchestrate.cli.app does not register the metrics sub-app yet (app.add_typer)")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["metrics", "record", "--task-type", "spec", "--duration", "4", "--status", "completed"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    result = runner.invoke(
        app, ["--workspace", str(workspace), "metrics", "--by", "task_type", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["group_by"]["spec"]["count"] == 1 and data["execution_time"]["p50_seconds"] == 4.0
    bad = runner.invoke(app, ["metrics", "--by", "colour"], catch_exceptions=False)
    assert bad.exit_code == ExitCode.INVALID_INPUT
