"""Goal fixes after QA (issue 10): non-finite targets, --since after --by, unlink, unknown labels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, rows

TOMORROW = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
NEXT_WEEK = (datetime.now() + timedelta(days=7)).strftime("%Y-%m-%d")


@pytest.fixture
def specs(pipeline_file: Callable[[str, str], Path]) -> None:
    pipeline_file("spec-a", "name: spec-a\nlabels: [specs]\nstages:\n  - name: work\n    run: 'true'\n")


@pytest.mark.parametrize(
    ("metric", "target"),
    [
        ("succeeded_runs", "nan"),
        ("succeeded_runs", "inf"),
        ("success_rate", "nan"),
        ("success_rate", "nan%"),
        ("p95_duration", "nan"),
        ("p95_duration", "inf"),
        ("cost", "nan"),
        ("cost", "inf"),
        ("cost", "$inf"),
    ],
)
def test_non_finite_targets_are_refused(workspace: Path, metric: str, target: str) -> None:
    result = invoke("goal", "add", "g", "--metric", metric, "--target", target)
    assert result.exit_code == 2, result.output
    assert f'--target "{target}": not a valid target for {metric}' in result.output
    assert rows(workspace / "orchestrate.db", "select count(*) from goals") == [(0,)]


def test_since_after_the_deadline_is_refused(workspace: Path) -> None:
    result = invoke("goal", "add", "g", "--metric", "succeeded_runs", "--target", "3",
                    "--since", NEXT_WEEK, "--by", TOMORROW)  # fmt: skip
    assert result.exit_code == 2
    assert f'--since "{NEXT_WEEK}" is not before --by "{TOMORROW}"' in result.output
    assert rows(workspace / "orchestrate.db", "select count(*) from goals") == [(0,)]


def test_unlinking_a_link_the_goal_does_not_have_is_an_error(workspace: Path, specs: None) -> None:
    assert (
        invoke(
            "goal", "add", "g", "--metric", "succeeded_runs", "--target", "3", "--label", "specs"
        ).exit_code
        == 0
    )
    result = invoke("goal", "unlink", "g", "--pipeline", "spec-a")
    assert result.exit_code == 2
    assert 'goal g has no link --pipeline "spec-a" (its links: --label specs)' in result.output
    assert rows(workspace / "orchestrate.db", "select kind, value from goal_links") == [("label", "specs")]
    assert invoke("goal", "unlink", "g", "--label", "specs").exit_code == 0


def test_a_label_no_pipeline_has_is_accepted_with_a_warning(workspace: Path, specs: None) -> None:
    result = invoke("goal", "add", "g", "--metric", "succeeded_runs", "--target", "3", "--label", "spces")
    assert result.exit_code == 0
    assert 'warning: --label "spces": no pipeline has this label yet' in result.output
    assert rows(workspace / "orchestrate.db", "select kind, value from goal_links") == [("label", "spces")]
    linked = invoke("goal", "link", "g", "--label", "specs")
    assert linked.exit_code == 0 and "warning" not in linked.output
