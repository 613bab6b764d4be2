from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import pytest

from orchestrate.domain.errors import SpecError
from orchestrate.domain.status import OnFailure
from orchestrate.spec.loader import load_pipeline, load_pipeline_text
from orchestrate.spec.model import PipelineSpec, RetrySpec, StageKind

from .helpers import issues, load, messages

DESIGN_EXAMPLE = Path(__file__).parent / "valid" / "design_example.yaml"


def needs(spec: PipelineSpec) -> dict[str, tuple[str, ...]]:
    return {s.name: s.needs for s in spec.stages}


# --- the DESIGN §2 example ---------------------------------------------------------------


def test_design_example_order() -> None:
    spec = load_pipeline(DESIGN_EXAMPLE)
    assert needs(spec) == {
        "validate": (),
        "security-scan": (),  # parallel_with validate: the same (no) dependencies
        "deploy-staging": ("validate", "security-scan"),
        "smoke-test": ("deploy-staging",),  # depends_on as a plain string
        "deploy-prod": ("smoke-test",),  # sequential by default
    }


def test_design_example_fields() -> None:
    spec = load_pipeline(DESIGN_EXAMPLE)
    text = DESIGN_EXAMPLE.read_text(encoding="utf-8")
    assert spec.name == "feature-complete"
    assert spec.path == str(DESIGN_EXAMPLE)
    assert spec.text == text
    assert spec.digest == hashlib.sha256(text.encode()).hexdigest()
    assert spec.variables == {"environment": "staging"}
    assert spec.default_timeout == 1800.0
    assert spec.default_retry == RetrySpec(max=0, backoff=5.0)
    assert spec.default_on_failure is OnFailure.HALT
    assert [(t.event, t.branches, t.cron) for t in spec.triggers] == [
        ("pull_request.merged", ("main",), None),
        (None, (), "0 */6 * * *"),
    ]
    validate = spec.stage("validate")
    assert validate.kind is StageKind.AGENT
    assert (validate.agent, validate.task) == ("regression-tester", "Run full test suite")
    assert validate.timeout == 1800.0
    assert validate.retry == RetrySpec(max=2, backoff=10.0)
    assert validate.line == 11
    scan = spec.stage("security-scan")
    assert (scan.kind, scan.parallel_with, scan.timeout) == (StageKind.RUN, "validate", None)
    staging = spec.stage("deploy-staging")
    assert staging.depends_on == ("validate", "security-scan")
    assert staging.rollback == {"run": "./undeploy staging"}
    assert staging.environment == "staging"
    smoke = spec.stage("smoke-test")
    assert (smoke.on_failure, smoke.rollback_to, smoke.depends_on) == (
        OnFailure.ROLLBACK,
        "deploy-staging",
        ("deploy-staging",),
    )
    prod = spec.stage("deploy-prod")
    assert prod.requires_approval and prod.approvers == ("team-lead", "devops")
    assert prod.approval == {"quorum": 2, "timeout": 86400.0, "on_timeout": "reject"}
    assert prod.when == {"branch": "main", "or": {"labels": ["hotfix"]}}
    assert prod.retry == RetrySpec(max=0, backoff=5.0)  # from defaults


def test_round_trip_through_json() -> None:
    spec = load_pipeline(DESIGN_EXAMPLE)
    again = PipelineSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


def test_round_trip_of_every_optional_field() -> None:
    spec = load(
        """
        name: full
        secrets: [TOKEN]
        timeout: 2h
        concurrency: {limit: 1, on_conflict: queue}
        budget: {cost_usd: 2.5, tokens: 100000, on_exceed: approval, approvers: [lead], forecast: true}
        experiments:
          prompts: {assign: hash, variants: [{name: a, weight: 1, prompt: p1}, {name: b, prompt: p2}]}
        handlers:
          on_failure: [{name: page, run: "echo ${run.id}", timeout: 1m}]
        defaults: {max_parallel: 3, max_repair_loops: 4, retry: {max: 1, backoff: 2s, exit_codes: [75]}}
        stages:
          - name: build
            python: pkg.mod:func
            matrix: {os: [linux, mac], include: [{os: win, arch: x86}], fail_fast: false}
            env: {PORT: 8080, DEBUG: true}
            secrets: [TOKEN]
            precheck: {run: "true", timeout: 1m, interval: 500ms}
          - name: fix
            agent: claude
            task: "fix round ${repair.round} with ${variant.prompts} ${variant.prompts.prompt}"
          - name: gate
            run: make check
            repair: {stage: fix}
            retry: 3
          - name: child
            uses: other
            with: {env: prod, n: 2}
        """
    )
    again = PipelineSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec.timeout == 7200.0
    assert spec.max_parallel == 3
    assert spec.experiments == [
        {
            "name": "prompts",
            "assign": "hash",
            "variants": [
                {"name": "a", "weight": 1, "prompt": "p1"},
                {"name": "b", "weight": 1, "prompt": "p2"},
            ],
        }
    ]
    assert spec.handlers == {"on_failure": [{"name": "page", "run": "echo ${run.id}", "timeout": 60.0}]}
    assert [s.name for s in spec.stages if s.group == "build"] == [
        "build[os=linux]",
        "build[os=mac]",
        "build[os=win,arch=x86]",
    ]
    build = spec.stage("build[os=mac]")
    assert build.matrix_values == {"os": "mac"}
    assert build.kind is StageKind.PYTHON
    assert build.env == {"PORT": "8080", "DEBUG": "true"}
    assert build.precheck == {"run": "true", "timeout": 60.0, "interval": 0.5}
    assert build.retry == RetrySpec(max=1, backoff=2.0, exit_codes=(75,))
    gate = spec.stage("gate")
    assert gate.repair == {"stage": "fix", "max_loops": 4}  # defaults.max_repair_loops
    assert gate.retry == RetrySpec(max=3, backoff=2.0, exit_codes=(75,))  # integer shorthand
    child = spec.stage("child")
    assert (child.kind, child.uses, child.with_) == (StageKind.USES, "other", {"env": "prod", "n": 2})


# --- order ---------------------------------------------------------------------------------


def test_sequential_by_default() -> None:
    spec = load(
        """
        name: p
        stages:
          - {name: a, run: x}
          - {name: b, run: x}
          - {name: c, run: x}
        """
    )
    assert needs(spec) == {"a": (), "b": ("a",), "c": ("b",)}


def test_empty_depends_on_makes_a_root() -> None:
    spec = load(
        """
        name: p
        stages:
          - {name: a, run: x}
          - {name: b, run: x, depends_on: []}
          - {name: c, run: x}
        """
    )
    assert needs(spec) == {"a": (), "b": (), "c": ("b",)}


def test_needs_are_in_file_order_without_duplicates() -> None:
    spec = load(
        """
        name: p
        stages:
          - {name: a, run: x}
          - {name: b, run: x, depends_on: []}
          - {name: c, run: x, depends_on: [b, a, b]}
        """
    )
    assert spec.stage("c").needs == ("a", "b")
    assert spec.stage("c").depends_on == ("b", "a", "b")


def test_parallel_with_chains_resolve_to_the_first_stage_dependencies() -> None:
    spec = load(
        """
        name: p
        stages:
          - {name: checkout, run: x}
          - {name: lint, run: x}
          - {name: unit, run: x, parallel_with: lint}
          - {name: types, run: x, parallel_with: unit}
          - {name: docs, run: x, parallel_with: later}
          - {name: later, run: x, depends_on: [checkout, lint]}
          - {name: build, run: x, depends_on: [lint, unit, types]}
        """
    )
    assert needs(spec) == {
        "checkout": (),
        "lint": ("checkout",),
        "unit": ("checkout",),
        "types": ("checkout",),
        "docs": ("checkout", "lint"),  # a parallel_with target may come later in the file
        "later": ("checkout", "lint"),
        "build": ("lint", "unit", "types"),
    }


def test_parallel_with_the_first_stage_is_a_root() -> None:
    spec = load(
        """
        name: p
        stages:
          - {name: a, run: x}
          - {name: b, run: x, parallel_with: a}
          - {name: c, run: x}
        """
    )
    assert needs(spec) == {"a": (), "b": (), "c": ("b",)}


def test_all_cycles_are_reported_with_their_members() -> None:
    found = messages(
        """
        name: p
        stages:
          - {name: a, run: x, depends_on: [b]}
          - {name: b, run: x, depends_on: [a]}
          - {name: c, run: x, depends_on: []}
          - {name: d, run: x}
          - {name: e, run: x, depends_on: [d]}
          - {name: f, run: x, parallel_with: c}
          - {name: g, run: x, depends_on: [e]}
          - {name: h, run: x, depends_on: [c]}
          - {name: i, run: x, depends_on: [g]}
        """
    )
    assert found == ["p.yaml:3:35: stages[0].depends_on: dependency cycle: a → b → a"]
    found = messages(
        """
        name: p
        stages:
          - {name: a, run: x, depends_on: []}
          - {name: b, run: x, depends_on: [d]}
          - {name: c, run: x}
          - {name: d, run: x}
        """
    )
    # The implicit edges count: d follows c, c follows b, b names d.
    assert found == ["p.yaml:4:35: stages[1].depends_on: dependency cycle: b → d → c → b"]


def test_a_cycle_through_parallel_with_is_named() -> None:
    found = messages(
        """
        name: p
        stages:
          - {name: a, run: x}
          - {name: b, run: x, parallel_with: c}
          - {name: c, run: x, depends_on: [b]}
        """
    )
    assert found == ['p.yaml:4:38: stages[1].parallel_with: parallel_with "c" makes "b" depend on itself']


def test_a_long_chain_does_not_recurse() -> None:
    body = "\n".join(f"  - {{name: s{i}, run: x}}" for i in range(3000))
    spec = load_pipeline_text(f"name: p\nstages:\n{body}\n", "p.yaml")
    assert spec.stages[-1].needs == ("s2998",)


# --- locations ----------------------------------------------------------------------------


def test_error_in_fourth_stage_timeout_points_at_its_value() -> None:
    found = issues(
        """
        name: cd
        stages:
          - name: build
            run: make
          - name: test
            run: make test
          - name: package
            run: make dist
          - name: deploy
            run: ./deploy
            timeout: 30 minutes
        """
    )
    assert [str(i) for i in found] == [
        'p.yaml:11:14: stages[3].timeout: "30 minutes" is not a duration (use 30m)'
    ]


def test_all_errors_are_collected_in_file_order() -> None:
    found = messages(
        """
        name: p
        stages:
          - name: a
            run: x
            timeout: soon
          - name: b
            runn: y
          - name: c
            run: z
            on_failure: stop
        """
    )
    assert found == [
        'p.yaml:5:14: stages[0].timeout: "soon" is not a duration (use e.g. 30s, 10m, 1.5h or 2d)',
        'p.yaml:7:5: stages[1].runn: unknown key "runn"',
        'p.yaml:10:17: stages[2].on_failure: "stop" is not one of halt, continue, rollback',
    ]


def test_semantic_errors_are_all_collected() -> None:
    found = messages(
        """
        name: p
        variables: {who: me}
        stages:
          - {name: a, run: "echo ${whom}"}
          - {name: b, run: x, depends_on: [zz]}
          - {name: c, task: x}
        """
    )
    assert found == [
        'p.yaml:4:20: stages[0].run: unknown reference "${whom}"',
        'p.yaml:5:36: stages[1].depends_on[0]: unknown stage "zz"',
        "p.yaml:6:15: stages[2].task: task needs an agent",
    ]


# --- references ---------------------------------------------------------------------------


def test_every_documented_reference_is_accepted() -> None:
    spec = load(
        """
        name: p
        variables: {environment: staging}
        experiments: [{name: e, variants: [{name: a}]}]
        stages:
          - name: build
            run: echo hi
          - name: test
            matrix: {os: [linux], include: [{os: mac, arch: arm}]}
            run: >-
              echo ${environment} ${run.id} ${run.status} ${event.pull_request.head.ref}
              ${stages.build.outputs.sha} ${matrix.os} ${matrix.arch} ${variant.e} ${variant.e.model}
              ${approval.feedback} ${approval.iteration} ${repair.round} ${repair.model} $$5 $HOME $${HOME}
          - name: later
            run: echo ${stages.build.outputs.sha}
            rollback: {run: "undo ${stages.later.outputs.id}"}
        """
    )
    assert [s.name for s in spec.stages] == ["build", "test[os=linux]", "test[os=mac,arch=arm]", "later"]
    assert spec.stage("test[os=mac,arch=arm]").matrix_values == {"os": "mac", "arch": "arm"}
    assert spec.stage("later").needs == ("test[os=linux]", "test[os=mac,arch=arm]")  # waits for all


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("${stages.ship.outputs.x}", 'stage "ship" is not upstream of "build"'),
        ("${stages.build.outputs.x}", "a stage cannot read its own outputs"),
        ("${stages.nope.outputs.x}", 'unknown stage "nope" in "${stages.nope.outputs.x}"'),
        ("${stages.ship}", '"${stages.ship}" is not a stage output'),
        ("${matrix.os}", '"${matrix.os}" is used but the stage has no matrix'),
        ("${variant.prompt}", '"${variant.prompt}" needs experiments: in the pipeline'),
        ("${run.idd}", 'unknown reference "${run.idd}"'),
        ("${secrets.TOKEN}", '"${secrets.TOKEN}": secrets are not references'),
        ("${}", 'empty reference "${}"'),
        ("${event}", 'unknown reference "${event}"'),
    ],
)
def test_unknown_references(ref: str, message: str) -> None:
    found = messages(
        f"""
        name: p
        stages:
          - name: build
            run: echo {ref}
          - name: ship
            run: x
        """
    )
    assert len(found) == 1 and message in found[0], found


def test_references_in_env_rollback_precheck_and_handlers_are_checked() -> None:
    found = messages(
        """
        name: p
        stages:
          - name: a
            run: x
            env: {A: "${x1}"}
            rollback: {run: "${x2}"}
            precheck: {run: "${x3}"}
        handlers:
          on_exit: [{name: h, run: "${x4}"}]
        """
    )
    assert [m.split(": ", 1)[1] for m in found] == [
        'stages[0].env.A: unknown reference "${x1}"',
        'stages[0].rollback.run: unknown reference "${x2}"',
        'stages[0].precheck.run: unknown reference "${x3}"',
        'handlers.on_exit[0].run: unknown reference "${x4}"',
    ]


# --- model building -----------------------------------------------------------------------


def test_kinds_and_defaults() -> None:
    spec = load(
        """
        name: p
        defaults: {on_failure: continue, retry: {max: 2}}
        variables: {flag: true, n: 3, ratio: 0.5, word: hi}
        stages:
          - {name: gate, requires_approval: true}
          - {name: agent, agent: claude}
          - {name: stop, run: x, on_failure: halt, retry: {backoff: 1m}}
        """
    )
    assert spec.variables == {"flag": "true", "n": "3", "ratio": "0.5", "word": "hi"}
    gate, agent, stop = spec.stages
    assert gate.kind is StageKind.GATE and agent.kind is StageKind.AGENT and agent.task is None
    assert gate.on_failure is OnFailure.CONTINUE and gate.retry == RetrySpec(max=2, backoff=5.0)
    assert gate.timeout is None and spec.default_timeout is None
    assert stop.on_failure is OnFailure.HALT and stop.retry == RetrySpec(max=2, backoff=60.0)


def test_merge_keys_and_anchors() -> None:
    spec = load(
        """
        name: p
        stages:
          - &base {name: a, run: make, timeout: 5m}
          - <<: *base
            name: b
        """
    )
    assert (spec.stage("b").run, spec.stage("b").timeout) == ("make", 300.0)


def test_yaml_keys_stay_as_written() -> None:
    # PyYAML reads `on:` as True; a user meant the word, and gets told it is unknown.
    found = issues("$schema: ./schema.json\nname: p\non: push\nstages: [{name: a, run: x}]\n")
    assert [str(i) for i in found] == ['p.yaml:3:1: on: unknown key "on"']


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    started = time.perf_counter()
    found = messages("\n".join(lines) + "\nname: p\nstages: [{name: a, run: x}]\n")
    assert time.perf_counter() - started < 10
    assert found == ["p.yaml:1:1: the document is too large (aliases expanding?)"]


def test_missing_file() -> None:
    with pytest.raises(SpecError) as info:
        load_pipeline("/nonexistent/cd.yaml", display_path="pipelines.d/cd.yaml")
    (issue,) = info.value.issues
    assert str(issue) == "pipelines.d/cd.yaml: no such file"
    assert issue.hint


def test_directory_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load_pipeline(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: p\xff\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_pipeline(bad)


def test_text_is_kept_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    raw = b"name: p\r\nstages:\r\n  - {name: a, run: x}\r\n"
    path.write_bytes(raw)
    spec = load_pipeline(path, display_path="pipelines.d/crlf.yaml")
    assert spec.text.encode() == raw
    assert spec.digest == hashlib.sha256(raw).hexdigest()
    assert spec.path == "pipelines.d/crlf.yaml"


# --- performance and imports ---------------------------------------------------------------


def test_a_thousand_stages_load_with_their_references() -> None:
    """How long it takes is bench/spec_load.py's figure; here, that it loads right."""
    text = thousand_stages()
    spec = load_pipeline_text(text, "big.yaml")
    assert len(spec.stages) == 1000 and spec.stage("s15").needs == ("s12", "s14")


def thousand_stages() -> str:
    stages = []
    for i in range(1000):
        extra = f"    depends_on: [s{i - 3}, s{i - 1}]\n" if i % 10 == 5 else ""
        stages.append(
            f"  - name: s{i}\n    run: echo ${{env}} ${{stages.s{max(i - 1, 0)}.outputs.x}}\n"
            f"    timeout: 5m\n    retry: {{max: 2, backoff: 10s}}\n    env: {{A: b}}\n{extra}"
        )
    return "name: big\nvariables: {env: prod}\nstages:\n" + "".join(stages).replace(
        "${stages.s0.outputs.x}\n    timeout", "\n    timeout", 1
    )


def test_model_and_interpolate_do_not_import_heavy_libraries() -> None:
    import subprocess

    code = (
        "import sys, orchestrate.spec.model, orchestrate.spec.interpolate, orchestrate.spec.durations;"
        "print(sorted({'yaml', 'jsonschema', 'networkx'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
