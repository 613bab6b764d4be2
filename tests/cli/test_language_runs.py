"""Issue 5 end to end: when, variables, outputs, events, matrix, sub-pipelines, secrets, dry runs."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = invoke(*args, "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def stages(record: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["name"]: s for s in record["stages"]}


def log_of(stage: dict) -> str:  # type: ignore[type-arg]
    return Path(stage["attempts"][-1]["log_path"]).read_text()


def wait_for_runs(db: Path, count: int, timeout: float = 30) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        found = rows(db, "select id, pipeline, status from runs order by created_at")
        if len(found) >= count and all(s in ("succeeded", "failed", "cancelled") for _, _, s in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def test_when_skips_with_a_reason_and_skipped_stages_satisfy_dependents(
    pipeline_file, workspace: Path
) -> None:
    pipeline_file(
        "w",
        """
        name: w
        variables: {environment: staging}
        stages:
          - name: build
            run: echo built
          - name: prod-only
            when: {variables: {environment: prod}}
            run: echo deploying
          - name: notify
            run: echo done
        """,
    )
    record = run_json("pipeline", "run", "w")
    s = stages(record)
    assert record["status"] == "succeeded"
    assert s["prod-only"]["status"] == "skipped"
    assert s["prod-only"]["reason"] == "when.variables.environment: 'staging' is not 'prod'"
    assert s["notify"]["status"] == "succeeded"
    status = invoke("pipeline", "status", record["id"])
    assert "skipped" in status.output and "'staging' is not 'prod'" in status.output
    prod = run_json("pipeline", "run", "w", "--var", "environment=prod")
    assert stages(prod)["prod-only"]["status"] == "succeeded"


def test_outputs_multiline_json_and_the_1_mb_limit(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "o",
        """
        name: o
        stages:
          - name: make
            run: |
              echo "version=1.2.3" >> "$ORCHESTRATE_OUTPUT"
              printf 'notes<<EOF\\nline one\\nline two\\nEOF\\n' >> "$ORCHESTRATE_OUTPUT"
          - name: use
            run: printf '%s|%s\\n' ${stages.make.outputs.version} ${stages.make.outputs.notes}
          - name: big
            depends_on: []
            optional: true
            run: head -c 1100000 /dev/zero | tr '\\0' a > "$ORCHESTRATE_OUTPUT"
        """,
    )
    record = run_json("pipeline", "run", "o")
    s = stages(record)
    assert s["make"]["outputs"] == {"version": "1.2.3", "notes": "line one\nline two"}
    assert log_of(s["use"]) == "1.2.3|line one\nline two\n"
    assert s["big"]["status"] == "failed"
    assert "the limit is 1 MB" in s["big"]["attempts"][0]["error"]
    shown = invoke("pipeline", "status", record["id"])
    assert "version=1.2.3" in shown.output


def test_a_hostile_event_value_is_passed_literally(pipeline_file, workspace: Path, tmp_path: Path) -> None:
    pipeline_file(
        "inj",
        """
        name: inj
        variables: {title: none}
        triggers:
          - event: pr.opened
            variables: {title: "${event.pull_request.title}"}
        stages:
          - name: echo
            run: printf '%s' ${title} > title.txt
        """,
    )
    hostile = "$(touch pwned); \"'"
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"pull_request": {"title": hostile}}))
    result = invoke("event", "emit", "pr.opened", "--payload", str(payload))
    assert result.exit_code == 0, result.output
    wait_for_runs(workspace / "orchestrate.db", 1)
    assert (workspace / "title.txt").read_text() == hostile
    assert not (workspace / "pwned").exists()


def test_event_emit_starts_matching_pipelines_only(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "deploy-docs",
        """
        name: deploy-docs
        triggers:
          - event: pull_request.merged
            branches: [main]
            paths: ["docs/**", "README.md"]
        stages:
          - {name: publish, run: echo publishing}
        """,
    )
    pipeline_file(
        "full-test",
        """
        name: full-test
        triggers:
          - event: pull_request.merged
        stages:
          - name: test
            when: {labels: [full-test], or: {paths: ["src/**"]}}
            run: echo testing
        """,
    )
    pipeline_file("other", "name: other\ntriggers: [{event: push}]\nstages:\n  - {name: a, run: 'true'}\n")
    dry = invoke(
        "event", "emit", "pull_request.merged", "--branch", "main", "--changed-file", "docs/a.md", "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    assert "deploy-docs: would start" in dry.output and "other: not triggered" in dry.output
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]
    result = invoke(
        "event", "emit", "pull_request.merged", "--branch", "main", "--changed-file", "docs/a.md", "--json"
    )
    started = {p["pipeline"]: p for p in json.loads(result.output)["pipelines"]}
    assert started["deploy-docs"]["run"] and started["full-test"]["run"] and started["other"]["run"] is None
    runs = wait_for_runs(workspace / "orchestrate.db", 2)
    assert {p for _, p, s in runs} == {"deploy-docs", "full-test"} and {s for _, _, s in runs} == {
        "succeeded"
    }
    full = run_json("pipeline", "status", started["full-test"]["run"])
    assert stages(full)["test"]["status"] == "skipped"  # no label, no src/ change
    assert full["triggered_by"] == "event:pull_request.merged" and full["event_id"]
    feature = invoke(
        "event",
        "emit",
        "pull_request.merged",
        "--branch",
        "feature/x",
        "--changed-file",
        "docs/a.md",
        "--dry-run",
    )
    assert "deploy-docs: not triggered (trigger.branch: 'feature/x' does not match" in feature.output
    listed = json.loads(invoke("event", "list", "--json").output)
    assert [len(e["runs"]) for e in listed] == [0, 2, 0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--payload", "missing.json"], "--payload missing.json: no such file"),
        (["--set", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_event_bad_input(workspace: Path, args: list[str], message: str) -> None:
    result = invoke("event", "emit", "x", *args)
    assert result.exit_code == 2 and message in result.output


def test_event_payload_must_be_a_json_object_under_1_mb(workspace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    result = invoke("event", "emit", "x", "--payload", str(bad))
    assert result.exit_code == 2 and "not JSON at line 1 column 7" in result.output
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"a": "x" * 1_100_000}))
    result = invoke("event", "emit", "x", "--payload", str(big))
    assert result.exit_code == 2 and "larger than 1 MB" in result.output
    listed = invoke("event", "list", "--json")
    assert json.loads(listed.output) == []


def test_variable_precedence_file_then_var_then_event(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "prec",
        """
        name: prec
        variables: {a: file, b: file, c: file}
        triggers:
          - event: go
            variables: {c: "${event.c}"}
        stages:
          - name: show
            run: echo "${a} ${b} ${c}" > prec.txt
        """,
    )
    assert invoke("pipeline", "run", "prec", "--var", "b=flag").exit_code == 0
    assert (workspace / "prec.txt").read_text() == "file flag file\n"
    invoke("event", "emit", "go", "--set", "c=event")
    wait_for_runs(workspace / "orchestrate.db", 2)
    assert (workspace / "prec.txt").read_text() == "file file event\n"


def test_matrix_expands_limits_and_dependents_wait_for_all(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "m",
        """
        name: m
        stages:
          - name: test
            matrix:
              python: ["3.10", "3.11"]
              db: [sqlite, postgres]
              exclude: [{python: "3.10", db: postgres}]
              include: [{python: "3.12", db: sqlite}]
              max_parallel: 1
            run: echo "py=${matrix.python} db=${matrix.db}"; sleep 0.1
          - name: report
            run: echo all done
        """,
    )
    record = run_json("pipeline", "run", "m", "--max-parallel", "4")
    s = stages(record)
    names = [n for n in s if n.startswith("test[")]
    assert names == [
        "test[python=3.10,db=sqlite]",
        "test[python=3.11,db=sqlite]",
        "test[python=3.11,db=postgres]",
        "test[python=3.12,db=sqlite]",
    ]
    assert log_of(s["test[python=3.11,db=postgres]"]) == "py=3.11 db=postgres\n"
    spans = sorted((s[n]["started_at"], s[n]["finished_at"]) for n in names)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # max_parallel: 1
    assert s["report"]["started_at"] >= max(end for _, end in spans)


def test_matrix_fail_fast_cancels_the_siblings(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "ff",
        """
        name: ff
        stages:
          - name: test
            on_failure: continue
            matrix: {n: ["1", "2", "3"], max_parallel: 2}
            run: '[ ${matrix.n} = 1 ] && exit 1; sleep 5'
        """,
    )
    record = run_json("pipeline", "run", "ff")
    s = stages(record)
    assert s["test[n=1]"]["status"] == "failed"
    assert s["test[n=2]"]["status"] == "cancelled"
    assert s["test[n=3]"]["status"] == "skipped" and "fail-fast" in s["test[n=3]"]["reason"]


def test_uses_runs_a_child_pipeline_linked_both_ways(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "child",
        """
        name: child
        variables: {who: nobody}
        stages:
          - name: greet
            run: echo "greeting=hello ${who}" >> "$ORCHESTRATE_OUTPUT"
        """,
    )
    pipeline_file(
        "parent",
        """
        name: parent
        variables: {name: world}
        stages:
          - name: sub
            uses: child
            with: {who: "${name}"}
          - name: after
            run: echo ${stages.sub.outputs.greeting}
        """,
    )
    record = run_json("pipeline", "run", "parent")
    assert record["status"] == "succeeded"
    s = stages(record)
    child_id = s["sub"]["outputs"]["run_id"]
    assert s["sub"]["outputs"]["greeting"] == "hello world"
    assert log_of(s["after"]) == "hello world\n"
    child = run_json("pipeline", "status", child_id)
    assert child["pipeline"] == "child" and child["parent_run_id"] == record["id"]


def test_uses_cycles_and_unknown_pipelines_are_refused(pipeline_file, workspace: Path) -> None:
    pipeline_file("a", "name: a\nstages:\n  - {name: s, uses: b}\n")
    pipeline_file("b", "name: b\nstages:\n  - {name: s, uses: a}\n")
    pipeline_file("c", "name: c\nstages:\n  - {name: s, uses: nope}\n")
    cycle = invoke("pipeline", "run", "a")
    assert cycle.exit_code == 2 and "pipeline cycle: a → b → a" in cycle.output
    unknown = invoke("pipeline", "run", "c")
    assert unknown.exit_code == 2 and "uses unknown pipeline 'nope'" in unknown.output
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]


def test_secrets_reach_the_stage_and_leave_no_trace(pipeline_file, workspace: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    secret = "s3cr3t-Value-42"
    (workspace / ".env").write_text(f"API_TOKEN={secret}\n")
    (workspace / "orchestrate.yaml").write_text("secrets_file: .env\n")
    pipeline_file(
        "sec",
        """
        name: sec
        secrets: [API_TOKEN]
        stages:
          - name: leak
            run: |
              echo "token is $API_TOKEN"
              echo "copy=$API_TOKEN" >> "$ORCHESTRATE_OUTPUT"
              test "$(printf %s "$API_TOKEN" | wc -c)" -eq 15
        """,
    )
    record = run_json("pipeline", "run", "sec")
    assert record["status"] == "succeeded"
    leak = stages(record)["leak"]
    assert log_of(leak) == "token is ***\n"
    assert leak["outputs"] == {"copy": "***"}
    for path in [*workspace.rglob("*")]:
        if path.is_file() and path.name != ".env":
            assert secret.encode() not in path.read_bytes(), path
    monkeypatch.delenv("API_TOKEN", raising=False)
    (workspace / ".env").write_text("OTHER=1\n")
    missing = invoke("pipeline", "run", "sec")
    assert missing.exit_code == 2 and "secret API_TOKEN is not set" in missing.output


def test_dry_run_with_an_event_says_what_would_run_or_skip(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "docs",
        """
        name: docs
        triggers: [{event: push, branches: [main]}]
        stages:
          - {name: build, run: make html}
          - name: publish
            when: {paths: ["docs/**"]}
            run: ./publish ${event.sha}
        """,
    )
    src = invoke(
        "pipeline",
        "run",
        "docs",
        "--dry-run",
        "--event",
        "push",
        "--branch",
        "main",
        "--changed-file",
        "src/x.py",
    )
    assert src.exit_code == 0, src.output
    assert "would be skipped: when.paths: no changed file matches docs/**" in src.output
    docs = invoke(
        "pipeline",
        "run",
        "docs",
        "--dry-run",
        "--event",
        "push",
        "--branch",
        "main",
        "--changed-file",
        "docs/i.md",
    )
    assert "would be skipped" not in docs.output and "./publish '<event.sha>'" in docs.output
    wrong = invoke("pipeline", "run", "docs", "--event", "push")
    assert wrong.exit_code == 2 and "goes with --dry-run" in wrong.output
