"""`orchestrate pipeline run` end to end: real processes, a real SQLite file, what the user sees."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from tests.cli.helpers import invoke, rows


def test_run_succeeds_and_stores_every_transition(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "ci",
        """
        name: ci
        stages:
          - name: lint
            run: echo linting
          - name: test
            run: echo testing
            parallel_with: lint
          - name: build
            depends_on: [lint, test]
            run: echo building
        """,
    )
    result = invoke("pipeline", "run", "ci")
    assert result.exit_code == 0, result.output
    assert "lint started" in result.output and "run " in result.output and "succeeded" in result.output
    db = workspace / "orchestrate.db"
    [(run_id, status)] = rows(db, "select id, status from runs")
    assert status == "succeeded"
    stages = dict(rows(db, "select name, status from stages where run_id = ?", run_id))
    assert stages == {"lint": "succeeded", "test": "succeeded", "build": "succeeded"}
    kinds = [k for (k,) in rows(db, "select kind from run_events where run_id = ? order by seq", run_id)]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("stage_started") == 3 and kinds.count("stage_finished") == 3
    assert (workspace / "logs" / run_id / "build.log").read_text() == "building\n"
    [(text,)] = rows(
        db,
        "select v.text from runs r join pipeline_versions v on v.digest = r.digest and v.pipeline = r.pipeline",
    )
    assert "name: ci" in text


def test_parallel_branches_overlap_in_stored_times(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "par",
        """
        name: par
        stages:
          - {name: a, run: sleep 0.4, depends_on: []}
          - {name: b, run: sleep 0.4, depends_on: []}
          - {name: c, run: "true", depends_on: [a, b]}
        """,
    )
    assert invoke("pipeline", "run", "par").exit_code == 0
    times = dict(
        (name, (start, end))
        for name, start, end in rows(
            workspace / "orchestrate.db", "select name, started_at, finished_at from stages"
        )
    )
    (a0, a1), (b0, b1), (c0, _) = times["a"], times["b"], times["c"]
    assert a0 < b1 and b0 < a1  # a and b ran at the same time
    assert c0 >= max(a1, b1)


def test_failed_run_exits_1_and_says_why(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "bad",
        """
        name: bad
        stages:
          - name: compile
            run: 'echo "error: missing semicolon"; exit 2'
          - name: ship
            run: echo never
        """,
    )
    result = invoke("pipeline", "run", "bad")
    assert result.exit_code == 1
    assert "compile failed" in result.output and "exit code 2" in result.output
    statuses = dict(rows(workspace / "orchestrate.db", "select name, status from stages"))
    assert statuses == {"compile": "failed", "ship": "pending"}
    [(status, reason)] = rows(workspace / "orchestrate.db", "select status, reason from runs")
    assert (status, reason) == ("failed", "stage compile failed")


def test_var_overrides_and_json_record(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "vars",
        """
        name: vars
        variables: {environment: staging}
        stages:
          - name: say
            run: echo "env=${environment}" >> "$ORCHESTRATE_OUTPUT"
        """,
    )
    result = invoke("pipeline", "run", "vars", "--var", "environment=prod", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["status"] == "succeeded"
    assert record["variables"] == {"environment": "prod"}
    [say] = record["stages"]
    assert say["name"] == "say" and say["outputs"] == {"env": "prod"}
    assert say["attempts"][0]["exit_code"] == 0


def test_unknown_var_is_refused_before_anything_is_stored(pipeline_file, workspace: Path) -> None:
    pipeline_file("v", "name: v\nstages:\n  - {name: a, run: 'true'}\n")
    result = invoke("pipeline", "run", "v", "--var", "nope=1")
    assert result.exit_code == 2
    assert "pipeline v has no variable 'nope'" in result.output
    assert (
        not (workspace / "orchestrate.db").exists()
        or rows(workspace / "orchestrate.db", "select * from runs") == []
    )


def test_dry_run_prints_levels_and_resolved_commands_and_stores_nothing(
    pipeline_file, workspace: Path
) -> None:
    pipeline_file(
        "plan",
        """
        name: plan
        variables: {target: staging}
        stages:
          - {name: build, run: make build}
          - {name: test, run: make test, parallel_with: build}
          - {name: deploy, run: "./deploy ${target}", depends_on: [build, test]}
        """,
    )
    result = invoke("pipeline", "run", "plan", "--dry-run", "--var", "target=prod")
    assert result.exit_code == 0, result.output
    assert "3 stages in 2 levels" in result.output
    assert "./deploy prod" in result.output
    assert not (workspace / "orchestrate.db").exists()
    assert not any((workspace / "logs").glob("*")) if (workspace / "logs").exists() else True


def test_unknown_pipeline_is_a_clear_error(workspace: Path) -> None:
    result = invoke("pipeline", "run", "nope")
    assert result.exit_code == 2
    assert 'unknown pipeline "nope"' in result.output
    assert "Traceback" not in result.output


def test_invalid_definition_is_refused_with_location_and_nothing_stored(
    pipeline_file, workspace: Path
) -> None:
    pipeline_file(
        "broken",
        """
        name: broken
        stages:
          - name: a
            run: "true"
            timeout: 30 minutes
        """,
    )
    result = invoke("pipeline", "run", "broken")
    assert result.exit_code == 2
    assert (
        'pipelines.d/broken.yaml:5:14: stages[0].timeout: "30 minutes" is not a duration (use 30m)'
        in result.output
    )
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]


def test_feature_not_available_yet_is_refused_in_one_line(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "gate",
        """
        name: gate
        handlers:
          on_failure: [{name: page, python: "pkg.mod:page"}]
        stages:
          - {name: build, run: "true"}
        """,
    )
    assert invoke("pipeline", "validate", "pipelines.d/gate.yaml").exit_code == 0
    result = invoke("pipeline", "run", "gate")
    assert result.exit_code == 2
    assert "cannot run yet" in result.output and "only run: handlers" in result.output
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]


def test_max_parallel_flag_limits_concurrency(pipeline_file, workspace: Path) -> None:
    stages = "\n".join(f"  - {{name: s{i}, run: sleep 0.1, depends_on: []}}" for i in range(4))
    pipeline_file("wide", f"name: wide\nstages:\n{stages}\n")
    assert invoke("pipeline", "run", "wide", "--max-parallel", "1").exit_code == 0
    spans = sorted(rows(workspace / "orchestrate.db", "select started_at, finished_at from stages"))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
