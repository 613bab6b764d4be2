"""Issue 7: rollback (automatic and by hand), repair loops, prechecks and handlers."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import invoke, rows


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = invoke(*args, "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def stages(record: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["name"]: s for s in record["stages"]}


EPIC = """
name: cd
stages:
  - name: build
    run: echo built
  - name: deploy-staging
    run: echo deployed >> state.txt
    rollback: {run: "echo undeployed >> state.txt"}
  - name: smoke-test
    run: exit 1
    on_failure: rollback
    rollback_to: deploy-staging
  - name: deploy-prod
    run: echo never
"""


def test_the_epic_smoke_test_rolls_back_deploy_staging(pipeline_file, workspace: Path) -> None:
    pipeline_file("cd", EPIC)
    record = run_json("pipeline", "run", "cd")
    s = stages(record)
    assert record["status"] == "failed" and record["reason"] == "rolled back to deploy-staging"
    assert s["deploy-staging"]["status"] == "rolled_back"
    assert s["deploy-staging"]["reason"] == "undone by rollback:deploy-staging"
    assert s["build"]["status"] == "succeeded"  # before rollback_to: kept
    assert s["smoke-test"]["status"] == "failed" and s["deploy-prod"]["status"] == "pending"
    assert s["rollback:deploy-staging"]["status"] == "succeeded"
    assert (workspace / "state.txt").read_text() == "deployed\nundeployed\n"
    log = Path(s["rollback:deploy-staging"]["attempts"][0]["log_path"])
    assert log.name == "rollback_deploy-staging.log"
    history = json.loads(invoke("pipeline", "history", "cd", "--json").output)
    assert history[0]["reason"] == "rolled back to deploy-staging"
    again = invoke("pipeline", "rollback", record["id"], "--yes")
    assert again.exit_code == 2 and "already rolled back" in again.output


def test_reverse_order_nothing_to_undo_and_a_failing_rollback_stops(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "chain",
        """
        name: chain
        stages:
          - {name: a, run: "true", rollback: {run: "echo undo-a >> undo.txt"}}
          - {name: b, run: "true"}
          - {name: c, run: "true", rollback: {run: "echo undo-c >> undo.txt; exit 3"}}
          - {name: d, run: "exit 1", on_failure: rollback, rollback_to: a}
        """,
    )
    record = run_json("pipeline", "run", "chain")
    s = stages(record)
    assert record["reason"].startswith("rollback of c failed; rollback stopped")
    assert (workspace / "undo.txt").read_text() == "undo-c\n"  # a is never undone after c's failed
    assert s["c"]["status"] == "succeeded" and s["rollback:c"]["status"] == "failed"
    assert s["a"]["status"] == "succeeded" and s["b"]["status"] == "succeeded"
    pipeline_file("chain", (workspace / "pipelines.d/chain.yaml").read_text().replace("; exit 3", ""))
    ok = run_json("pipeline", "run", "chain")
    s = stages(ok)
    assert ok["reason"] == "rolled back to a"
    assert [s[n]["status"] for n in "abc"] == ["rolled_back"] * 3
    assert s["b"]["reason"] == "nothing to undo"


def test_manual_rollback_of_a_finished_run(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "rel",
        """
        name: rel
        stages:
          - {name: build, run: "true"}
          - {name: publish, run: "echo published >> rel.txt", rollback: {run: "echo unpublished >> rel.txt"}}
          - {name: announce, run: "true", rollback: {run: "echo retracted >> rel.txt"}}
        """,
    )
    record = run_json("pipeline", "run", "rel")
    assert record["status"] == "succeeded"
    unconfirmed = invoke("pipeline", "rollback", record["id"])
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    bad = invoke("pipeline", "rollback", record["id"], "--to", "nope", "--yes")
    assert bad.exit_code == 2 and 'has no stage "nope"' in bad.output
    done = run_json("pipeline", "rollback", record["id"], "--to", "publish", "--yes")
    assert done["status"] == "failed" and done["reason"].startswith("rolled back to publish by ")
    assert (workspace / "rel.txt").read_text() == "published\nretracted\nunpublished\n"
    assert stages(done)["build"]["status"] == "succeeded"


def test_a_repair_loop_fixes_the_gate(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "repair",
        """
        name: repair
        stages:
          - name: fix-it
            run: echo "round ${repair.round} after exit ${repair.exit_code}" >> fixes.txt; touch fixed-${repair.round}
          - name: tests
            depends_on: []
            run: test -e fixed-2
            repair: {stage: fix-it, max_loops: 5}
          - name: ship
            depends_on: [tests]
            run: echo shipped
        """,
    )
    record = run_json("pipeline", "run", "repair")
    s = stages(record)
    assert record["status"] == "succeeded"
    assert [a["status"] for a in s["tests"]["attempts"]] == ["failed", "failed", "succeeded"]
    assert len(s["fix-it"]["attempts"]) == 2 and s["ship"]["status"] == "succeeded"
    assert (workspace / "fixes.txt").read_text() == "round 1 after exit 1\nround 2 after exit 1\n"


def test_a_repair_loop_that_exhausts_its_budget_fails(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "hopeless",
        """
        name: hopeless
        stages:
          - {name: fix, run: "true"}
          - {name: gate, depends_on: [], run: "exit 1", repair: {stage: fix, max_loops: 3}}
        """,
    )
    record = run_json("pipeline", "run", "hopeless")
    s = stages(record)
    assert record["status"] == "failed" and len(s["gate"]["attempts"]) == 4 and len(s["fix"]["attempts"]) == 3


def test_precheck_polls_then_fails_with_its_message_without_an_attempt(
    pipeline_file, workspace: Path
) -> None:
    pipeline_file(
        "pre",
        """
        name: pre
        stages:
          - name: waits
            run: echo ran
            precheck: {run: "test -e ready", timeout: 1s, interval: 0.2s, message: "Start it with: touch ready"}
        """,
    )
    record = run_json("pipeline", "run", "pre")
    s = stages(record)["waits"]
    assert record["status"] == "failed" and s["attempts"] == []
    assert s["reason"] == "precheck failed: Start it with: touch ready"
    (workspace / "ready").touch()
    ok = run_json("pipeline", "run", "pre")
    assert ok["status"] == "succeeded" and len(stages(ok)["waits"]["attempts"]) == 1


def test_handlers_run_by_outcome_and_not_again_on_resume(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "h",
        """
        name: h
        handlers:
          on_success: [{name: celebrate, run: "echo success >> h.txt"}]
          on_failure: [{name: page, run: "echo failed ${run.failed} >> h.txt"}]
          on_exit: [{name: cleanup, run: "echo exit ${run.status} >> h.txt"}]
        stages:
          - {name: work, run: "test -e ok"}
        """,
    )
    failed = run_json("pipeline", "run", "h")
    assert failed["status"] == "failed"
    assert (workspace / "h.txt").read_text() == "failed work\nexit failed\n"
    assert stages(failed)["handler:on_failure:page"]["status"] == "succeeded"
    (workspace / "ok").touch()
    resumed = run_json("pipeline", "resume", failed["id"])
    assert resumed["status"] == "succeeded"
    # on_success runs now; on_exit already succeeded for this run, so it does not run again
    assert (workspace / "h.txt").read_text() == "failed work\nexit failed\nsuccess\n"
    handlers = dict(
        rows(workspace / "orchestrate.db", "select name, attempts from stages where name like 'handler:%'")
    )
    assert handlers == {
        "handler:on_failure:page": 1,
        "handler:on_exit:cleanup": 1,
        "handler:on_success:celebrate": 1,
    }


def test_rollback_to_that_is_not_upstream_is_a_validation_error(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "v",
        """
        name: v
        stages:
          - {name: a, run: "true", on_failure: rollback, rollback_to: b}
          - {name: b, run: "true"}
        """,
    )
    result = invoke("pipeline", "validate", "pipelines.d/v.yaml")
    assert result.exit_code == 2 and "rollback_to" in result.output and '"b"' in result.output
