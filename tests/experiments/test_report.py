"""`orchestrate experiment list|report`: statistics checked against independent references (issue 10)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrate.metrics.experiments import runs_needed, wilson
from orchestrate.store import open_store
from tests.cli.helpers import invoke, raw_store

Run = tuple[str, str, float, int | None, float | None]  # variant, status, duration, tokens, cost


def history(db: Path, experiment: str, runs: Sequence[Run], pipeline: str = "ab") -> None:
    """Runs of ``pipeline`` with their variants and task metrics, written straight into the store."""
    open_store(db).close()  # the schema
    with raw_store(db) as conn:
        for i, (variant, status, duration, tokens, cost) in enumerate(runs):
            run_id = f"{pipeline}-{experiment}-{i:04d}"
            conn.execute(
                "INSERT INTO runs (id, pipeline, version, digest, status, variables, created_at, started_at, "
                "finished_at) VALUES (?, ?, 1, 'x', ?, '{}', ?, ?, ?)",
                (run_id, pipeline, status, 1000.0 + i, 1000.0 + i, 1000.0 + i + duration),
            )
            conn.execute(
                "INSERT INTO run_variants VALUES (?, ?, ?, 'hash', ?)",
                (run_id, experiment, variant, 1000.0 + i),
            )
            if tokens is not None or cost is not None:
                conn.execute(
                    "INSERT INTO task_metrics (task_id, task_type, duration_seconds, status, created_at, pipeline, "
                    "run_id, stage, attempt, input_tokens, output_tokens, cost_usd) "
                    "VALUES (?, 'work', ?, 'completed', ?, ?, ?, 'work', 1, ?, 0, ?)",
                    (f"{run_id}/work/1", duration, 1000.0 + i, pipeline, run_id, tokens, cost),
                )


def report_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = invoke("experiment", "report", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Reference: sum of hypergeometric probabilities no larger than the observed table's."""
    row1, col1, n = a + b, a + c, a + b + c + d

    def prob(x: int) -> float:
        return math.comb(col1, x) * math.comb(n - col1, row1 - x) / math.comb(n, row1)

    observed = prob(a)
    lo, hi = max(0, row1 + col1 - n), min(row1, col1)
    return sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= observed * (1 + 1e-7))


def test_wilson_interval_matches_textbook_values() -> None:
    # 8 of 10: 0.4902 to 0.9433 (Newcombe 1998, Table I; also Wikipedia's worked example).
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    # 0 of 4 by the closed form: upper = z²/(n + z²).
    z2 = 1.959963984540054**2
    assert wilson(0, 4) == (0.0, pytest.approx(z2 / (4 + z2)))


def test_runs_needed_matches_the_textbook_sample_size() -> None:
    # Two proportions 0.6 vs 0.4, α 0.05 two-sided, power 0.8: 97 per group without the continuity
    # correction, 107 with it (Fleiss, Levin & Paik, Statistical Methods for Rates and Proportions).
    assert runs_needed(0.6, 0.4) == 107
    assert runs_needed(0.5, 0.5) is None


def test_two_variants_fisher_and_mann_whitney(workspace: Path) -> None:
    runs: list[Run] = [("terse", "succeeded", d, 100, 0.01) for d in (1, 2, 3)]
    runs += [("terse", "failed", 4, 300, 0.03)]
    runs += [("detailed", "succeeded", 5, 1000, 0.10)]
    runs += [("detailed", "failed", d, 2000, 0.20) for d in (6, 7, 8)]
    runs += [("detailed", "cancelled", 9, None, None)]
    history(workspace / "orchestrate.db", "prompt-style", runs)
    data = report_json("prompt-style")
    terse, detailed = sorted(data["variants"], key=lambda v: v["name"], reverse=True)
    assert (terse["name"], terse["runs"], terse["succeeded"], terse["success_rate"]) == ("terse", 4, 3, 0.75)
    assert (detailed["runs"], detailed["not_compared"]) == (4, 1)  # the cancelled run is not compared
    assert terse["mean_tokens"] == 150 and terse["mean_cost_usd"] == pytest.approx(0.015)
    assert detailed["mean_tokens"] == 1750
    assert (terse["p50_seconds"], terse["p95_seconds"]) == (pytest.approx(2), pytest.approx(4))
    lo, hi = terse["success_rate_ci95"]
    assert (round(lo, 4), round(hi, 4)) == (0.3006, 0.9544)  # Wilson, 3 of 4
    success = data["tests"]["success"]
    assert success["test"] == "fisher_exact"
    assert success["p_value"] == pytest.approx(fisher_two_sided(3, 1, 1, 3))
    assert success["p_value"] == pytest.approx(34 / 70)  # the tea-tasting table
    duration = data["tests"]["duration"]
    # 1..4 against 5..8 with no ties: the most extreme of C(8, 4) = 70 orders, twice (two-sided).
    assert duration["test"] == "mann_whitney_u"
    assert duration["p_value"] == pytest.approx(2 / 70)
    assert data["verdict"].startswith("terse is faster: P50 2.0s vs 6.0s, p=0.029")


def test_a_clear_success_difference_is_named(workspace: Path) -> None:
    runs: list[Run] = [("detailed", "succeeded", 1.0 + i % 3, None, None) for i in range(20)]
    runs += [("terse", "succeeded", 1.0 + i % 3, None, None) for i in range(8)]
    runs += [("terse", "failed", 1.0 + i % 3, None, None) for i in range(12)]
    history(workspace / "orchestrate.db", "prompt-style", runs)
    data = report_json("prompt-style")
    p = fisher_two_sided(20, 0, 8, 12)
    assert data["tests"]["success"]["p_value"] == pytest.approx(p)
    assert (
        data["verdict"]
        == f"detailed succeeds more often: 1.00 vs 0.40, {'p<0.001' if p < 0.001 else f'p={p:.3f}'}"
    )


def test_no_difference_yet_says_how_many_more_runs(workspace: Path) -> None:
    runs: list[Run] = [("a", "succeeded" if i < 6 else "failed", 1.0 + i, None, None) for i in range(10)]
    runs += [("b", "succeeded" if i < 4 else "failed", 1.5 + i, None, None) for i in range(10)]
    history(workspace / "orchestrate.db", "e", runs)
    data = report_json("e")
    assert data["tests"]["success"]["p_value"] > 0.05
    assert data["verdict"] == "no difference yet (0.60 vs 0.40); about 97 more runs per variant needed"
    assert data["more_runs_per_variant"] == 97  # 107 needed (see above) - 10 run


def test_three_variants_use_chi_square(workspace: Path) -> None:
    counts = {"a": (9, 1), "b": (5, 5), "c": (2, 8)}
    runs: list[Run] = []
    for name, (ok, bad) in counts.items():
        runs += [(name, "succeeded", 1.0, None, None)] * ok + [(name, "failed", 2.0, None, None)] * bad
    history(workspace / "orchestrate.db", "e3", runs)
    data = report_json("e3")
    # Reference: Pearson's statistic by hand; with 2 degrees of freedom the p-value is exp(-x/2).
    total_ok = sum(ok for ok, _ in counts.values())
    total = sum(ok + bad for ok, bad in counts.values())
    x = 0.0
    for ok, bad in counts.values():
        n = ok + bad
        for observed, share in ((ok, total_ok / total), (bad, 1 - total_ok / total)):
            x += (observed - n * share) ** 2 / (n * share)
    assert data["tests"]["success"]["test"] == "chi_square"
    assert data["tests"]["success"]["p_value"] == pytest.approx(math.exp(-x / 2))
    assert data["tests"]["duration"]["test"] == "kruskal_wallis"
    assert data["verdict"].startswith("a succeeds more often: 0.90 vs 0.20")


def test_pipeline_filter_and_unknown_experiment(workspace: Path) -> None:
    db = workspace / "orchestrate.db"
    history(db, "e", [("a", "succeeded", 1.0, None, None), ("b", "failed", 1.0, None, None)], pipeline="one")
    history(db, "e", [("a", "failed", 1.0, None, None)] * 3, pipeline="two")
    # Without --pipeline, runs of two pipelines declaring the same name are never pooled.
    pooled = invoke("experiment", "report", "e")
    assert pooled.exit_code == 2
    assert "experiment e is declared by 2 pipelines: one, two; say which with --pipeline" in pooled.output
    only = report_json("e", "--pipeline", "one")
    assert only["pipeline"] == "one" and sum(v["runs"] for v in only["variants"]) == 2
    result = invoke("experiment", "report", "nope")
    assert result.exit_code == 2
    assert "experiment nope has no runs" in result.output and "Traceback" not in result.output


def test_list_and_report_through_real_runs(pipeline_file, workspace: Path) -> None:
    pipeline_file(
        "ab",
        """
        name: ab
        experiments: {prompt-style: {variants: {terse: 1, detailed: 1}}}
        stages:
          - {name: work, run: 'test "${variant.prompt-style}" = detailed'}
        """,
    )
    for variant in ("terse", "terse", "detailed", "detailed", "detailed"):
        invoke("pipeline", "run", "ab", "--plain", "--variant", f"prompt-style={variant}")
    listed = invoke("experiment", "list")
    assert listed.exit_code == 0
    assert "prompt-style" in listed.output and "detailed" in listed.output
    rows = json.loads(invoke("experiment", "list", "--json").output)
    assert {(r["variant"], r["runs"], r["succeeded"]) for r in rows} == {("terse", 2, 0), ("detailed", 3, 3)}
    shown = invoke("experiment", "report", "prompt-style")
    assert shown.exit_code == 0
    assert "fisher exact" in shown.output and "mann whitney u" in shown.output
    assert "0.00–0.66" in shown.output  # Wilson, 0 of 2: upper z²/(2 + z²)
    assert "no difference yet (1.00 vs 0.00); about" in shown.output


def test_a_single_pipeline_needs_no_filter_and_a_variant_without_runs_does_not_void_the_duration_test(
    pipeline_file, workspace: Path
) -> None:
    runs: list[Run] = [("terse", "succeeded", d, None, None) for d in (1, 2, 3, 4)]
    runs += [("detailed", "succeeded", d, None, None) for d in (5, 6, 7, 8)]
    history(workspace / "orchestrate.db", "style", runs)
    pipeline_file("ab", "name: ab\nexperiments: {style: {variants: {terse: 1, detailed: 1, long: 1}}}\n"
                  "stages:\n  - {name: work, run: 'true'}\n")  # fmt: skip
    assert invoke("pipeline", "validate", "pipelines.d/ab.yaml").exit_code == 0
    invoke("pipeline", "list")  # registers the definition
    data = report_json("style")
    assert data["pipeline"] == "ab"
    assert {v["name"]: v["runs"] for v in data["variants"]} == {"terse": 4, "detailed": 4, "long": 0}
    duration = data["tests"]["duration"]
    # "long" has no runs: the two with durations are compared, 1..4 against 5..8.
    assert duration["test"] == "mann_whitney_u"
    assert duration["p_value"] == pytest.approx(2 / 70)
