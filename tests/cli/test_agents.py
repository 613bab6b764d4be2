"""Issue 8: agents from orchestrate.yaml with each usage format, python stages, agent commands."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from tests.cli.helpers import invoke

FAKE = str(Path(__file__).parents[1] / "fixtures" / "fake_agent.py")


def configure(workspace: Path) -> None:
    agents = {
        "plain": {"command": [sys.executable, FAKE, "outputs", "{task}", "{model}"], "model": "small"},
        "jsonl": {
            "command": [sys.executable, FAKE, "json-last-line", "{task}"],
            "usage": "json-last-line",
            "usage_paths": {
                "input_tokens": "usage.in",
                "output_tokens": "usage.out",
                "cost_usd": "usage.cost",
            },
        },
        "claude": {
            "command": [sys.executable, FAKE, "claude-json", "{task}"],
            "usage": "claude-json",
            "executor": "claude-code",
        },
        "broken": {"command": [sys.executable, FAKE, "fail", "{task}"]},
        "missing": {"command": ["no-such-agent-binary", "{task}"]},
    }
    (workspace / "orchestrate.yaml").write_text(json.dumps({"agents": agents}))


def stages_of(record: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["name"]: s for s in record["stages"]}


def test_agent_stages_capture_usage_in_each_format(pipeline_file, workspace: Path) -> None:
    configure(workspace)
    pipeline_file(
        "agents",
        """
        name: agents
        variables: {ticket: "ABC-1; rm -rf /"}
        stages:
          - {name: a, agent: plain, task: "fix ${ticket}"}
          - {name: b, agent: jsonl, task: review, depends_on: []}
          - {name: c, agent: claude, task: summarize, depends_on: []}
        """,
    )
    result = invoke("pipeline", "run", "agents", "--json")
    assert result.exit_code == 0, result.output
    s = stages_of(json.loads(result.output))
    assert s["a"]["outputs"] == {
        "model": "small",
        "input_tokens": "120",
        "output_tokens": "30",
        "cost_usd": "0.0042",
    }
    assert (
        Path(s["a"]["attempts"][0]["log_path"]).read_text() == "working on: fix ABC-1; rm -rf /\n"
    )  # one argv element
    assert s["b"]["outputs"] == {
        "model": "fake-1",
        "input_tokens": "200",
        "output_tokens": "50",
        "cost_usd": "0.01",
    }
    assert s["c"]["outputs"] == {
        "model": "claude-sonnet-4",
        "input_tokens": "1500",
        "output_tokens": "250",
        "cost_usd": "0.0731",
    }


def test_unknown_agent_is_a_validation_error_and_agent_commands(pipeline_file, workspace: Path) -> None:
    configure(workspace)
    pipeline_file("bad", "name: bad\nstages:\n  - {name: a, agent: claud, task: x}\n")
    result = invoke("pipeline", "run", "bad")
    assert result.exit_code == 2
    assert 'pipelines.d/bad.yaml:3: stages[0].agent: unknown agent "claud"' in result.output
    assert 'did you mean "claude"?' in result.output
    listed = json.loads(invoke("agent", "list", "--json").output)
    assert {a["name"]: bool(a["found"]) for a in listed}["missing"] is False
    assert invoke("agent", "check", "claude").exit_code == 0
    missing = invoke("agent", "check", "missing")
    assert missing.exit_code == 1 and "not on PATH" in missing.output
    unknown = invoke("agent", "check", "nope")
    assert unknown.exit_code == 2 and 'unknown agent "nope"' in unknown.output


def test_a_failing_agent_fails_its_stage(pipeline_file, workspace: Path) -> None:
    configure(workspace)
    pipeline_file("f", "name: f\nstages:\n  - {name: a, agent: broken, task: x}\n")
    result = invoke("pipeline", "run", "f", "--json")
    assert result.exit_code == 1
    assert stages_of(json.loads(result.output))["a"]["attempts"][0]["exit_code"] == 3


def test_python_stages_sync_async_failing_and_bad_references(pipeline_file, workspace: Path) -> None:
    (workspace / "steps.py").write_text(
        textwrap.dedent(
            """
            import asyncio

            def build(ctx):
                ctx.print("building for", ctx.variables["target"])
                return {"artifact": "app.tar", "input_tokens": 7}

            async def check(ctx):
                await asyncio.sleep(0.01)
                return {"saw": ctx.outputs["build"]["artifact"]}

            def explode(ctx):
                raise RuntimeError("boom")
            """
        )
    )
    pipeline_file(
        "py",
        """
        name: py
        variables: {target: prod}
        stages:
          - {name: build, python: "steps:build"}
          - {name: check, python: "steps:check"}
          - {name: explode, python: "steps:explode", on_failure: continue}
        """,
    )
    result = invoke("pipeline", "run", "py", "--json")
    assert result.exit_code == 1, result.output
    s = stages_of(json.loads(result.output))
    assert s["build"]["outputs"] == {"artifact": "app.tar", "input_tokens": "7"}
    assert Path(s["build"]["attempts"][0]["log_path"]).read_text() == "building for prod\n"
    assert s["check"]["outputs"] == {"saw": "app.tar"}
    assert s["explode"]["attempts"][0]["error"] == "RuntimeError: boom"
    assert "Traceback" in Path(s["explode"]["attempts"][0]["log_path"]).read_text()
    pipeline_file("nomod", "name: nomod\nstages:\n  - {name: a, python: 'no_such_module:run'}\n")
    bad = invoke("pipeline", "run", "nomod")
    assert bad.exit_code == 2 and 'stages[0].python: cannot find module "no_such_module"' in bad.output
    pipeline_file("nofunc", "name: nofunc\nstages:\n  - {name: a, python: 'steps:nothing'}\n")
    missing = invoke("pipeline", "run", "nofunc", "--json")
    assert missing.exit_code == 1
    assert "steps has no function nothing" in json.loads(missing.output)["stages"][0]["attempts"][0]["error"]


def test_every_finished_attempt_writes_a_task_metric(pipeline_file, workspace: Path) -> None:
    from tests.cli.helpers import rows

    configure(workspace)
    pipeline_file(
        "m",
        """
        name: m
        stages:
          - {name: review, agent: claude, task: x}
          - {name: flaky, run: "exit 1", retry: {max: 1, backoff: 0s}, depends_on: [review], on_failure: continue}
        """,
    )
    result = invoke("pipeline", "run", "m", "--json")
    run_id = json.loads(result.output)["id"]
    found = rows(
        workspace / "orchestrate.db",
        "select task_id, task_type, model, executor, status, input_tokens, output_tokens, cost_usd, pipeline "
        "from task_metrics order by task_id",
    )
    assert found == [
        (f"{run_id}/flaky/1", "flaky", None, "subprocess", "failed", None, None, None, "m"),
        (f"{run_id}/flaky/2", "flaky", None, "subprocess", "failed", None, None, None, "m"),
        (
            f"{run_id}/review/1",
            "review",
            "claude-sonnet-4",
            "claude-code",
            "completed",
            1500,
            250,
            0.0731,
            "m",
        ),
    ]


def test_status_shows_tokens_and_cost_per_stage_and_in_total(pipeline_file, workspace: Path) -> None:
    configure(workspace)
    pipeline_file(
        "c", "name: c\nstages:\n  - {name: a, agent: plain, task: x}\n  - {name: b, agent: claude, task: y}\n"
    )
    run_id = json.loads(invoke("pipeline", "run", "c", "--json").output)["id"]
    shown = invoke("pipeline", "status", run_id).output
    assert "tokens" in shown and "cost" in shown
    assert "$0.0042" in shown and "$0.0731" in shown and "total: 1,900 tokens, $0.0773" in shown


def test_history_shows_cost_per_run(pipeline_file, workspace: Path) -> None:
    configure(workspace)
    pipeline_file("c", "name: c\nstages:\n  - {name: a, agent: claude, task: y}\n")
    invoke("pipeline", "run", "c")
    [row] = json.loads(invoke("pipeline", "history", "c", "--json").output)
    assert (row["tokens"], row["cost_usd"]) == (1750, 0.0731)
    assert "$0.0731" in invoke("pipeline", "history", "c").output
