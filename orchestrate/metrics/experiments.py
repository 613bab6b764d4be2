"""Comparing an experiment's variants (DESIGN §8; issue 10): ``orchestrate experiment report``.

Per variant, over its finished runs (succeeded or failed; cancelled and unfinished runs
are counted apart and compared on nothing):

- success rate with a 95% Wilson score interval;
- run duration P50 and P95 (nearest rank: the ⌈q·n⌉-th smallest);
- mean tokens and mean cost per run, over the runs that reported any.

Tests (p-values from SciPy, imported here only):

- success: Fisher's exact test (two-sided) for two variants, Pearson's chi-square test of
  independence on the variants × {succeeded, failed} table for more;
- duration: the Mann-Whitney U test (two-sided) for two variants, its k-sample form
  Kruskal-Wallis H for more.

The verdict names a difference when p < 0.05. Otherwise it estimates the runs needed per
variant to detect the observed difference in success rate (best vs worst variant) with a
two-sided test at α = 0.05 and power 0.8, by the normal approximation for two proportions:
n = (z₀.₉₇₅·√(2·p̄(1−p̄)) + z₀.₈·√(p₁(1−p₁) + p₂(1−p₂)))² / (p₁ − p₂)², p̄ = (p₁ + p₂)/2,
with Fleiss' continuity correction n' = n/4·(1 + √(1 + 4/(n·|p₁ − p₂|)))² (the test is exact).
While the test is not significant at least one more run is always needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrate.domain.status import RunStatus
from orchestrate.store.experiments import ExperimentRun

ALPHA = 0.05
POWER = 0.8
Z_975 = 1.959963984540054  # the standard normal's 97.5th percentile (two-sided 95%)
Z_80 = 0.8416212335729143  # its 80th percentile (power 0.8)


def wilson(successes: int, n: int, z: float = Z_975) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when there are no trials."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank: the ⌈q·n⌉-th smallest value; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def runs_needed(p1: float, p2: float) -> int | None:
    """Runs per variant to detect p1 vs p2 (two-sided α = 0.05, power 0.8); None when they are equal.

    The normal approximation with Fleiss' continuity correction, which suits an exact test.
    """
    if p1 == p2:
        return None
    mean = (p1 + p2) / 2
    root = Z_975 * math.sqrt(2 * mean * (1 - mean)) + Z_80 * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = root * root / (p1 - p2) ** 2
    corrected = n / 4 * (1 + math.sqrt(1 + 4 / (n * abs(p1 - p2)))) ** 2
    return math.ceil(corrected)


@dataclass(frozen=True)
class VariantStats:
    name: str
    runs: int  # finished: succeeded + failed
    succeeded: int
    other: int  # cancelled or not finished: not compared
    ci95: tuple[float, float]
    p50_seconds: float | None
    p95_seconds: float | None
    mean_tokens: float | None
    mean_cost_usd: float | None
    durations: tuple[float, ...] = field(repr=False, default=())

    @property
    def failed(self) -> int:
        return self.runs - self.succeeded

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None


@dataclass(frozen=True)
class TestResult:
    test: str  # fisher_exact | chi_square | mann_whitney_u | kruskal_wallis
    p_value: float | None  # None: the test cannot be computed on these data
    note: str = ""


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    pipeline: str | None
    variants: tuple[VariantStats, ...]
    success: TestResult
    duration: TestResult
    verdict: str
    more_runs_per_variant: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "pipeline": self.pipeline,
            "variants": [
                {
                    "name": v.name,
                    "runs": v.runs,
                    "succeeded": v.succeeded,
                    "failed": v.failed,
                    "not_compared": v.other,
                    "success_rate": v.success_rate,
                    "success_rate_ci95": list(v.ci95),
                    "p50_seconds": v.p50_seconds,
                    "p95_seconds": v.p95_seconds,
                    "mean_tokens": v.mean_tokens,
                    "mean_cost_usd": v.mean_cost_usd,
                }
                for v in self.variants
            ],
            "tests": {
                "success": {
                    "test": self.success.test,
                    "p_value": self.success.p_value,
                    "note": self.success.note,
                },
                "duration": {
                    "test": self.duration.test,
                    "p_value": self.duration.p_value,
                    "note": self.duration.note,
                },
            },
            "verdict": self.verdict,
            "more_runs_per_variant": self.more_runs_per_variant,
            "method": {
                "alpha": ALPHA,
                "power": POWER,
                "interval": "Wilson score, 95%",
                "percentiles": "nearest rank",
                "runs_needed": "normal approximation for two proportions with Fleiss' continuity "
                "correction, best vs worst variant",
            },
        }


def variant_stats(name: str, runs: Sequence[ExperimentRun]) -> VariantStats:
    done = [r for r in runs if r.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)]
    succeeded = sum(1 for r in done if r.status is RunStatus.SUCCEEDED)
    durations = tuple(r.duration for r in done if r.duration is not None)
    tokens = [r.tokens for r in done if r.tokens is not None]
    costs = [r.cost_usd for r in done if r.cost_usd is not None]
    return VariantStats(
        name=name,
        runs=len(done),
        succeeded=succeeded,
        other=len(runs) - len(done),
        ci95=wilson(succeeded, len(done)),
        p50_seconds=percentile(durations, 0.5),
        p95_seconds=percentile(durations, 0.95),
        mean_tokens=sum(tokens) / len(tokens) if tokens else None,
        mean_cost_usd=sum(costs) / len(costs) if costs else None,
        durations=durations,
    )


def success_test(variants: Sequence[VariantStats]) -> TestResult:
    from scipy import stats

    compared = [v for v in variants if v.runs]
    if len(compared) < 2:
        return TestResult("fisher_exact", None, "needs finished runs of two variants")
    table = [[v.succeeded, v.failed] for v in compared]
    if len(compared) == 2:
        return TestResult("fisher_exact", float(stats.fisher_exact(table, alternative="two-sided").pvalue))
    if all(v.failed == 0 for v in compared) or all(v.succeeded == 0 for v in compared):
        return TestResult("chi_square", 1.0, "every run had the same outcome")
    return TestResult("chi_square", float(stats.chi2_contingency(table).pvalue))


def duration_test(variants: Sequence[VariantStats]) -> TestResult:
    from scipy import stats

    # Like the success test: the variants with durations are compared (a declared variant
    # without runs yet is left out, not a reason to test nothing).
    samples = [v.durations for v in variants if v.durations]
    name = "mann_whitney_u" if len(samples) <= 2 else "kruskal_wallis"
    if len(samples) < 2:
        return TestResult(name, None, "needs durations of two variants")
    if len({d for s in samples for d in s}) == 1:
        return TestResult(name, 1.0, "every run took the same time")
    if len(samples) == 2:
        return TestResult(name, float(stats.mannwhitneyu(*samples, alternative="two-sided").pvalue))
    return TestResult(name, float(stats.kruskal(*samples).pvalue))


def _p(value: float) -> str:
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def verdict(
    variants: Sequence[VariantStats], success: TestResult, duration: TestResult
) -> tuple[str, int | None]:
    """The plain sentence, and the runs per variant still needed (None when not estimated)."""
    rated = sorted((v for v in variants if v.runs), key=lambda v: v.success_rate or 0.0, reverse=True)
    if len(rated) < 2:
        return "not enough runs yet: each variant needs finished runs to compare", None
    best, worst = rated[0], rated[-1]
    b, w = best.success_rate or 0.0, worst.success_rate or 0.0
    if success.p_value is not None and success.p_value < ALPHA:
        return f"{best.name} succeeds more often: {b:.2f} vs {w:.2f}, {_p(success.p_value)}", None
    if duration.p_value is not None and duration.p_value < ALPHA:
        timed = sorted((v for v in variants if v.p50_seconds is not None), key=lambda v: v.p50_seconds or 0.0)
        fast, slow = timed[0], timed[-1]
        return (
            f"{fast.name} is faster: P50 {fast.p50_seconds:.1f}s vs {slow.p50_seconds:.1f}s, "
            f"{_p(duration.p_value)}; success rates do not differ yet ({b:.2f} vs {w:.2f})",
            None,
        )
    needed = runs_needed(b, w)
    if needed is None:
        return (
            f"no difference yet: success rates are equal ({b:.2f}); more runs would not separate them",
            None,
        )
    more = max(1, needed - min(v.runs for v in rated))
    return f"no difference yet ({b:.2f} vs {w:.2f}); about {more} more runs per variant needed", more


def report(
    experiment: str, pipeline: str | None, runs: Sequence[ExperimentRun], declared: Sequence[str] = ()
) -> ExperimentReport:
    """The report over these runs; ``declared`` variants with no runs are listed too."""
    names = list(dict.fromkeys([*declared, *sorted({r.variant for r in runs})]))
    variants = tuple(variant_stats(n, [r for r in runs if r.variant == n]) for n in names)
    success = success_test(variants)
    duration = duration_test(variants)
    sentence, more = verdict(variants, success, duration)
    return ExperimentReport(experiment, pipeline, variants, success, duration, sentence, more)


@dataclass(frozen=True)
class ListedVariant:
    pipeline: str
    experiment: str
    variant: str
    runs: int
    succeeded: int
    last_run_at: float | None


def declared_variants(store: Any, pipeline: str, experiment: str) -> list[str]:
    """The variants the pipeline's newest registered version declares for ``experiment``."""
    import json

    from orchestrate.spec.model import PipelineSpec

    info = store.version(pipeline)
    if info is None:
        return []
    spec = PipelineSpec.from_dict(json.loads(info.compiled))
    for e in spec.experiments or ():
        if e["name"] == experiment:
            return [str(v["name"]) for v in e["variants"]]
    return []


def load_report(store: Any, experiment: str, pipeline: str | None) -> ExperimentReport:
    from orchestrate.domain.errors import NotFoundError, UsageError

    runs = store.experiments().runs(experiment, pipeline)
    if pipeline is None:  # one experiment name in two pipelines is two experiments: never pooled
        declaring = {
            info.name for info in store.pipelines() if declared_variants(store, info.name, experiment)
        }
        found = sorted({r.pipeline for r in runs} | declaring)
        if len(found) > 1:
            raise UsageError(
                f"experiment {experiment} is declared by {len(found)} pipelines: {', '.join(found)}; "
                "say which with --pipeline",
                hint=f"orchestrate experiment report {experiment} --pipeline {found[0]}",
            )
        pipeline = found[0] if found else None
    pipelines = sorted({r.pipeline for r in runs} | ({pipeline} if pipeline else set()))
    declared = [v for p in pipelines for v in declared_variants(store, p, experiment)]
    if not runs and not declared:
        where = f" of pipeline {pipeline}" if pipeline else ""
        raise NotFoundError(
            f"experiment {experiment}{where} has no runs",
            hint="orchestrate experiment list shows the experiments and their runs",
        )
    return report(experiment, pipeline, runs, declared)


def listing(store: Any) -> list[ListedVariant]:
    """Every experiment variant with runs, and the declared ones of registered pipelines without any."""
    import json

    from orchestrate.spec.model import PipelineSpec

    seen = {(c.pipeline, c.experiment, c.variant): c for c in store.experiments().summary()}
    out = [
        ListedVariant(c.pipeline, c.experiment, c.variant, c.runs, c.succeeded, c.last_run_at)
        for c in seen.values()
    ]
    for info in store.pipelines():
        version = store.version(info.name)
        if version is None:
            continue
        spec = PipelineSpec.from_dict(json.loads(version.compiled))
        for e in spec.experiments or ():
            for v in e["variants"]:
                if (info.name, e["name"], v["name"]) not in seen:
                    out.append(ListedVariant(info.name, e["name"], v["name"], 0, 0, None))
    return sorted(out, key=lambda x: (x.pipeline, x.experiment, x.variant))
