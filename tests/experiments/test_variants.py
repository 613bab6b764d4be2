"""Experiments: variant assignment per run, --variant, ${variant.NAME}, and the metric rows (issue 10)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from orchestrate.domain.experiments import Experiment, Variant, assign
from tests.cli.helpers import invoke, rows

PIPELINE = """
name: ab
experiments:
  - name: prompt-style
    variants: {terse: 1, detailed: 1}
    assign: hash
stages:
  - name: write
    run: 'echo "style=${variant.prompt-style}" >> $ORCHESTRATE_OUTPUT; echo "$ORCHESTRATE_VARIANTS"'
"""


def _run_ids(db: Path) -> list[str]:
    return [r[0] for r in rows(db, "select id from runs order by id")]


def test_each_run_gets_a_recorded_variant_that_its_stages_see(pipeline_file, workspace: Path) -> None:
    pipeline_file("ab", PIPELINE)
    for _ in range(4):
        assert invoke("pipeline", "run", "ab", "--plain").exit_code == 0
    db = workspace / "orchestrate.db"
    stored = rows(db, "select run_id, experiment, variant, assigned_by from run_variants order by run_id")
    assert len(stored) == 4
    for run_id, experiment, variant, by in stored:
        assert (experiment, by) == ("prompt-style", "hash")
        # The variant the stage saw through ${variant.prompt-style} is the recorded one.
        outputs = rows(db, "select outputs from stages where run_id = ?", run_id)[0][0]
        assert json.loads(outputs)["style"] == variant
        # Independent reference: the documented rule, sha256("experiment:run") as a point in [0, 1).
        point = int.from_bytes(hashlib.sha256(f"prompt-style:{run_id}".encode()).digest()[:8], "big") / 2**64
        assert variant == ("terse" if point < 0.5 else "detailed")
        # The metric row of its attempt carries the pair.
        assert rows(db, "select prompt_variant from task_metrics where run_id = ?", run_id) == [
            (f"prompt-style={variant}",)
        ]


def test_variant_flag_forces_one(pipeline_file, workspace: Path) -> None:
    pipeline_file("ab", PIPELINE)
    for _ in range(3):
        result = invoke("pipeline", "run", "ab", "--plain", "--variant", "prompt-style=detailed")
        assert result.exit_code == 0, result.output
        assert (
            "prompt-style=detailed"
            in (workspace / "logs")
            .joinpath(_run_ids(workspace / "orchestrate.db")[-1], "write.log")
            .read_text()
        )
    assert rows(workspace / "orchestrate.db", "select distinct variant, assigned_by from run_variants") == [
        ("detailed", "forced")
    ]


def test_unknown_experiment_or_variant_is_a_one_line_error(pipeline_file, workspace: Path) -> None:
    pipeline_file("ab", PIPELINE)
    result = invoke("pipeline", "run", "ab", "--variant", "prompt-stile=terse")
    assert result.exit_code == 2
    assert "no experiment 'prompt-stile' (experiments: prompt-style)" in result.output
    assert "Traceback" not in result.output
    result = invoke("pipeline", "run", "ab", "--variant", "prompt-style=long")
    assert result.exit_code == 2
    assert "experiment prompt-style has no variant 'long' (variants: terse, detailed)" in result.output
    result = invoke("pipeline", "run", "ab", "--variant", "prompt-style")
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.output
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]


def test_unknown_experiment_reference_is_a_validation_error(pipeline_file) -> None:
    pipeline_file(
        "bad",
        PIPELINE.replace("name: ab", "name: bad").replace("${variant.prompt-style}", "${variant.prompt}"),
    )
    result = invoke("pipeline", "validate", "pipelines.d/bad.yaml")
    assert result.exit_code == 2
    assert 'unknown experiment "prompt" in "${variant.prompt}"' in result.output


def test_a_model_variant_feeds_the_agents_model_and_task(pipeline_file, workspace: Path) -> None:
    (workspace / "orchestrate.yaml").write_text(
        "agents:\n  echo: {command: [sh, -c, 'echo \"$0 $1\"', 'model={model}', 'task={task}'], model: base}\n"
    )
    pipeline_file(
        "agentab",
        """
        name: agentab
        experiments:
          model:
            variants:
              - {name: small, model: haiku, prompt: "be brief"}
              - {name: large, model: opus, prompt: "be thorough"}
        stages:
          - {name: work, agent: echo, task: "${variant.model.prompt} (${variant.model})"}
        """,
    )
    result = invoke("pipeline", "run", "agentab", "--plain", "--variant", "model=large")
    assert result.exit_code == 0, result.output
    db = workspace / "orchestrate.db"
    run_id = _run_ids(db)[0]
    log = (workspace / "logs" / run_id / "work.log").read_text()
    assert "model=opus task=be thorough (large)" in log
    assert rows(db, "select model, prompt_variant from task_metrics") == [("opus", "model=large")]


def test_hash_assignment_is_balanced_by_weight() -> None:
    experiment = Experiment("e", (Variant("a", 3.0), Variant("b", 1.0)))
    ids = [f"01run{i:06d}" for i in range(8000)]
    counts = Counter(assign([experiment], run_id)[0].variant.name for run_id in ids)
    # Expected 6000 / 2000; a binomial sd is about 39, so 5 sd either way.
    assert abs(counts["a"] - 6000) < 200
    again = Counter(assign([experiment], run_id)[0].variant.name for run_id in ids)
    assert again == counts  # deterministic


def test_experiments_no_longer_refused(pipeline_file) -> None:
    pipeline_file("ab", PIPELINE)
    result = invoke("pipeline", "run", "ab", "--plain")
    assert result.exit_code == 0, result.output
    assert "cannot run yet" not in result.output


def test_a_stage_outside_the_experiments_stages_cannot_read_its_variant(pipeline_file) -> None:
    pipeline_file(
        "scoped",
        """
        name: scoped
        experiments:
          - name: style
            stages: [one]
            variants: [{name: t, prompt: "be terse"}, {name: d, prompt: "be detailed"}]
        stages:
          - {name: one, run: 'echo ${variant.style.prompt}'}
          - {name: two, run: 'echo ${variant.style}'}
        """,
    )
    result = invoke("pipeline", "validate", "pipelines.d/scoped.yaml")
    assert result.exit_code == 2
    assert (
        'scoped.yaml:8:22: stages[1].run: ${variant.style}: experiment "style" does not apply to stage "two" '
        "(its stages: one)"
    ) in result.output
    assert "stages[0]" not in result.output


def test_the_variant_lookup_ignores_experiments_not_applying_to_the_stage() -> None:
    from orchestrate.domain.experiments import lookup

    experiment = Experiment("style", (Variant("t", 1.0, {"prompt": "be terse"}),), stages=("one",))
    chosen = assign([experiment], "01run")
    assert lookup(chosen, "variant.style.prompt", "one") == "be terse"
    assert lookup(chosen, "variant.style.prompt", "two") is None
    assert lookup(chosen, "variant.style", "two") is None


def test_forcing_one_experiment_twice_is_an_error(pipeline_file, workspace: Path) -> None:
    pipeline_file("ab", PIPELINE)
    result = invoke(
        "pipeline",
        "run",
        "ab",
        "--plain",
        "--variant",
        "prompt-style=terse",
        "--variant",
        "prompt-style=detailed",
    )
    assert result.exit_code == 2
    assert (
        "--variant prompt-style=detailed: experiment prompt-style is already forced to 'terse'"
        in result.output
    )
    assert rows(workspace / "orchestrate.db", "select count(*) from runs") == [(0,)]


def test_experiment_names_with_a_dot_are_rejected(pipeline_file) -> None:
    pipeline_file(
        "dotted",
        """
        name: dotted
        experiments:
          - name: prompt.style
            variants: {a: 1, b: 1}
        stages:
          - {name: one, run: 'echo ${variant.prompt.style}'}
        """,
    )
    result = invoke("pipeline", "validate", "pipelines.d/dotted.yaml")
    assert result.exit_code == 2
    assert 'experiments[0].name: experiment name "prompt.style" contains "."' in result.output
    assert "use - or _ instead (e.g. prompt-style)" in result.output


def test_a_skill_variant_feeds_the_agents_skill_argument_and_the_metric(
    pipeline_file, workspace: Path
) -> None:
    (workspace / "orchestrate.yaml").write_text(
        "agents:\n  echo: {command: [sh, -c, 'echo \"$0 $1 $ORCHESTRATE_SKILL\"', 'skill={skill}', 'task={task}']}\n"
    )
    pipeline_file(
        "skillab",
        """
        name: skillab
        experiments:
          skill:
            variants:
              - {name: v1, skill: skills/review-v1.md}
              - {name: v2, skill: skills/review-v2.md}
        stages:
          - {name: work, agent: echo, task: go}
        """,
    )
    result = invoke("pipeline", "run", "skillab", "--plain", "--variant", "skill=v2")
    assert result.exit_code == 0, result.output
    db = workspace / "orchestrate.db"
    run_id = _run_ids(db)[0]
    log = (workspace / "logs" / run_id / "work.log").read_text()
    assert "skill=skills/review-v2.md task=go skills/review-v2.md" in log
    assert rows(db, "select skill_version, prompt_variant from task_metrics") == [
        ("skills/review-v2.md", "skill=v2")
    ]
