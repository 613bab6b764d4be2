from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestrate.spec
from orchestrate.spec.when import MAX_REASON, Decision, WhenContext, evaluate, glob_match, problems

HOLD = "when: conditions hold"
MANUAL = "when: conditions hold; when.paths: no changed files known (manual run): not filtered"

EVENT = WhenContext(
    branch="feature/x",
    changed_files=("src/a.py",),
    labels=("docs",),
    variables={"environment": "staging", "debug": "true", "replicas": "3"},
    outputs={"build": {"version": "1.2.3", "size": "2048"}, "lint.v2": {"ok": "yes"}},
)

# (when, context, reason): the reason is "when: conditions hold" exactly when the stage runs.
CASES: list[tuple[Any, WhenContext, str]] = [
    # branch
    ({"branch": "main"}, EVENT, "when.branch: 'feature/x' does not match 'main'"),
    ({"branch": "feature/*"}, EVENT, HOLD),
    ({"branch": ["main", "release/*"]}, EVENT, "when.branch: 'feature/x' does not match 'main', 'release/*'"),
    ({"branch": ["main", "feature/**"]}, EVENT, HOLD),
    ({"branch": "main"}, WhenContext(), "when.branch: no branch (manual run) to match 'main'"),
    ({"branch": ["feature/**", "!feature/x"]}, EVENT, "when.branch: 'feature/x' is excluded by '!feature/x'"),
    ({"branch": ["!feature/x", "feature/**"]}, EVENT, HOLD),  # the last matching glob decides
    # paths
    (
        {"paths": ["docs/**", "README.md"]},
        EVENT,
        "when.paths: no changed file matches docs/**, README.md (changed: src/a.py)",
    ),
    ({"paths": ["src/**"]}, EVENT, HOLD),
    ({"paths": "*.py"}, EVENT, HOLD),
    (
        {"paths": ["src/**", "!src/*.py"]},
        EVENT,
        "when.paths: no changed file matches src/**, !src/*.py (changed: src/a.py)",
    ),
    ({"paths": ["docs/**"]}, WhenContext(), MANUAL),
    (
        {"paths": ["docs/**"]},
        WhenContext(changed_files=()),
        "when.paths: no changed file matches docs/** (changed: none)",
    ),
    # labels
    ({"labels": ["hotfix"]}, EVENT, "when.labels: none of [hotfix] present (labels: docs)"),
    ({"labels": ["hotfix", "docs"]}, EVENT, HOLD),
    ({"labels": "docs"}, EVENT, HOLD),
    ({"labels": ["hotfix"]}, WhenContext(), "when.labels: none of [hotfix] present (labels: none)"),
    # variables
    ({"variables": {"environment": "prod"}}, EVENT, "when.variables.environment: 'staging' is not 'prod'"),
    ({"variables": {"environment": "staging"}}, EVENT, HOLD),
    (
        {"variables": {"environment": "staging", "region": "eu"}},
        EVENT,
        "when.variables.region: not set (expected 'eu')",
    ),
    ({"variables": {"debug": True, "replicas": 3}}, EVENT, HOLD),  # YAML true is "true", 3 is "3"
    ({"variables": {"debug": False}}, EVENT, "when.variables.debug: 'true' is not 'false'"),
    ({"variables": {}}, EVENT, HOLD),
    # expr
    ({"expr": 'environment == "prod"'}, EVENT, 'when.expr: false (environment == "prod")'),
    ({"expr": 'variables.environment == "staging" and replicas >= 2'}, EVENT, HOLD),
    ({"expr": '"docs" in labels and branch != "main"'}, EVENT, HOLD),
    ({"expr": 'stages.build.outputs.version == "1.2.3"'}, EVENT, HOLD),
    ({"expr": "stages.build.outputs.size > 1024 and stages.lint.v2.outputs.ok"}, EVENT, HOLD),
    ({"expr": '"src/a.py" in changed_files'}, EVENT, HOLD),
    ({"expr": "changed_files == null"}, WhenContext(), HOLD),
    ({"expr": "missing"}, EVENT, "when.expr: false (missing)"),
    ({"expr": "environment ==\n  'prod'"}, EVENT, "when.expr: false (environment == 'prod')"),
    # several keys: ANDed, the first failing one named
    (
        {"branch": "feature/*", "labels": ["hotfix"]},
        EVENT,
        "when.labels: none of [hotfix] present (labels: docs)",
    ),
    ({"labels": ["hotfix"], "branch": "main"}, EVENT, "when.labels: none of [hotfix] present (labels: docs)"),
    ({"branch": "feature/*", "labels": ["docs"], "paths": "src/**"}, EVENT, HOLD),
    ({}, EVENT, HOLD),
    (None, EVENT, HOLD),
]


@pytest.mark.parametrize(("when", "ctx", "reason"), CASES)
def test_conditions(when: Any, ctx: WhenContext, reason: str) -> None:
    assert evaluate(when, ctx) == Decision(reason.startswith(HOLD), reason)


# The combinators, on the DESIGN §2 example `{branch: main, or: {labels: [hotfix]}}` and others.
COMBINED: list[tuple[Any, WhenContext, str]] = [
    ({"branch": "main", "or": {"labels": ["hotfix"]}}, WhenContext(branch="main"), HOLD),
    ({"branch": "main", "or": {"labels": ["hotfix"]}}, WhenContext(branch="x", labels=("hotfix",)), HOLD),
    (
        {"branch": "main", "or": {"labels": ["hotfix"]}},
        WhenContext(branch="feature/x"),
        "when.branch: 'feature/x' does not match 'main' (and 1 other alternative)",
    ),
    (
        {"or": [{"branch": "main"}, {"labels": ["hotfix"]}, {"expr": "false"}]},
        EVENT,
        "when.or[0].branch: 'feature/x' does not match 'main' (and 2 other alternatives)",
    ),
    ({"or": [{"branch": "main"}, {"labels": ["docs"]}]}, EVENT, HOLD),
    ({"or": {"labels": ["hotfix"]}}, EVENT, "when.or.labels: none of [hotfix] present (labels: docs)"),
    ({"or": []}, EVENT, "when.or: no alternatives"),
    ({"not": {"branch": "main"}}, EVENT, HOLD),
    ({"not": {"branch": "feature/*"}}, EVENT, "when.not: holds (branch: 'feature/x' matches 'feature/*')"),
    ({"not": {"labels": ["docs"]}}, EVENT, "when.not: holds (labels: docs present)"),
    ({"not": {"branch": "feature/*", "labels": "docs"}}, EVENT, "when.not: holds (branch, labels all hold)"),
    ({"not": {}}, EVENT, "when.not: holds (no conditions)"),
    (
        {"not": {"not": {"branch": "main"}}},
        EVENT,
        "when.not: holds (not: does not hold (branch: 'feature/x' does not match 'main'))",
    ),
    (
        {"not": {"paths": "docs/**"}},
        WhenContext(),
        "when.not: holds (paths: no changed files known (manual run): not filtered)",
    ),
    ({"all": [{"branch": "feature/*"}, {"labels": ["docs"]}]}, EVENT, HOLD),
    (
        {"all": [{"branch": "feature/*"}, {"labels": ["hotfix"]}]},
        EVENT,
        "when.all[1].labels: none of [hotfix] present (labels: docs)",
    ),
    ({"all": []}, EVENT, HOLD),
    ({"any": [{"branch": "main"}, {"labels": ["docs"]}]}, EVENT, HOLD),
    (
        {"any": [{"branch": "main"}, {"labels": ["hotfix"]}]},
        EVENT,
        "when.any[0].branch: 'feature/x' does not match 'main' (and 1 other alternative)",
    ),
    ({"any": []}, EVENT, "when.any: no alternatives"),
    # nested alternatives count once each
    (
        {"any": [{"or": [{"branch": "a"}, {"branch": "b"}]}, {"labels": ["c"]}]},
        EVENT,
        "when.any[0].or[0].branch: 'feature/x' does not match 'a' (and 2 other alternatives)",
    ),
    ({"any": [{"not": {"labels": ["docs"]}}, {"all": [{"paths": "src/**"}, {"expr": "true"}]}]}, EVENT, HOLD),
    (
        {"branch": "feature/*", "not": {"labels": "docs"}, "or": {"expr": "replicas > 5"}},
        EVENT,
        "when.not: holds (labels: docs present) (and 1 other alternative)",
    ),
]


@pytest.mark.parametrize(("when", "ctx", "reason"), COMBINED)
def test_combinators(when: Any, ctx: WhenContext, reason: str) -> None:
    assert evaluate(when, ctx) == Decision(reason.startswith(HOLD), reason)


EPIC = yaml.safe_load(
    """
stages:
  - name: deploy-docs
    when:
      paths: ["docs/**", "README.md"]
    agent: doc-deployer

  - name: full-test
    when:
      labels: ["needs-full-test"]
      or:
        paths: ["src/core/**"]
"""
)
DEPLOY_DOCS, FULL_TEST = (stage["when"] for stage in EPIC["stages"])


@pytest.mark.parametrize(
    ("changed", "runs"),
    [
        (("docs/index.md",), True),
        (("docs/api/v2/ref.md",), True),
        (("README.md",), True),
        (("src/a.py", "README.md"), True),
        (("packages/x/README.md",), True),  # gitignore-style: a bare name matches at any depth
        (("src/a.py",), False),
        (("docs.md", "mydocs/a.md"), False),
        ((), False),
        (None, True),  # a manual run: changed files unknown, not filtered
    ],
)
def test_epic_deploy_docs(changed: tuple[str, ...] | None, runs: bool) -> None:
    assert evaluate(DEPLOY_DOCS, WhenContext(branch="main", changed_files=changed)).run is runs


@pytest.mark.parametrize(
    ("labels", "changed", "reason"),
    [
        (("needs-full-test",), ("docs/a.md",), HOLD),
        ((), ("src/core/engine/loop.py",), HOLD),
        (("needs-full-test",), ("src/core/x.py",), HOLD),
        (
            ("docs",),
            ("src/cli/app.py",),
            "when.labels: none of [needs-full-test] present (labels: docs) (and 1 other alternative)",
        ),
        ((), None, "when: conditions hold; when.or.paths: no changed files known (manual run): not filtered"),
    ],
)
def test_epic_full_test(labels: tuple[str, ...], changed: tuple[str, ...] | None, reason: str) -> None:
    decision = evaluate(FULL_TEST, WhenContext(labels=labels, changed_files=changed))
    assert decision == Decision(reason.startswith(HOLD), reason)


@pytest.mark.parametrize(
    ("glob", "branch", "matches"),
    [
        ("main", "main", True),
        ("main", "mainline", False),
        ("main", "fix/main", False),  # unlike gitignore, a glob without "/" is anchored
        ("release/*", "release/1.2", True),
        ("release/*", "release/1.2/hotfix", False),
        ("release/*", "release/", True),
        ("feature/**", "feature/a", True),
        ("feature/**", "feature/a/b/c", True),
        ("feature/**", "feature", False),
        ("**/hotfix", "hotfix", True),
        ("**/hotfix", "team/a/hotfix", True),
        ("**/hotfix", "nothotfix", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("*-rc", "1.0-rc", True),
        ("*-rc", "v1/1.0-rc", False),
        ("**-rc", "v1/1.0-rc", True),
        ("v?.?", "v1.2", True),
        ("v?", "v/", False),
        ("v[0-9]*", "v10", True),
        ("v[!0-9]*", "v10", False),
        ("v[!0-9]*", "vx", True),
        ("[]]", "]", True),
        ("x[", "x[", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("", "", True),
        ("Main", "main", False),
    ],
)
def test_branch_globs(glob: str, branch: str, matches: bool) -> None:
    assert glob_match(glob, branch) is matches
    assert evaluate({"branch": glob}, WhenContext(branch=branch)).run is matches


def test_branch_glob_cannot_take_exponential_time() -> None:
    assert glob_match("*a*a*a*a*a*a*a*a*b", "a" * 5_000) is False
    assert glob_match("**a**a**a**a**a**b", "a/" * 2_500) is False


def test_paths_gitignore_semantics() -> None:
    def runs(globs: list[str], *files: str) -> bool:
        return evaluate({"paths": globs}, WhenContext(changed_files=files)).run

    assert runs(["/README.md"], "README.md") and not runs(["/README.md"], "docs/README.md")
    assert runs(["docs/*"], "docs/a/b.md")  # a matched directory covers its contents, as in .gitignore
    assert runs(["*.md"], "a/b/c.md")
    assert runs(["src/**", "!src/**/*.md"], "src/x.md", "src/y.py")
    assert not runs(["src/**", "!src/**/*.md"], "src/x.md")
    assert runs(["docs/**"], "./docs/a.md")


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (
            {"bogus": 1},
            "when.bogus: invalid: unknown condition (use one of branch, paths, labels, variables, expr, or, not, all, any)",
        ),
        ({"expr": 'environment == "prod")'}, 'when.expr: invalid: unexpected ")" at column 22'),
        ({"not": {"expr": "a =="}}, "when.not.expr: invalid: unexpected end of expression at column 5"),
        ({"branch": 3}, "when.branch: invalid: must be a string or a list of strings"),
        ({"variables": {"x": None}}, "when.variables.x: invalid: must be a string, number or boolean"),
        ({"variables": ["x"]}, "when.variables: invalid: must be a mapping of variable names to values"),
        ({"or": "x"}, "when.or: invalid: must be a mapping or a list of mappings"),
        ({"any": {"branch": "x"}}, "when.any: invalid: must be a list of mappings"),
        ({"all": ["x"]}, "when.all[0]: invalid: must be a mapping of conditions"),
        (["branch"], "when: invalid: must be a mapping of conditions"),
    ],
)
def test_malformed_conditions_never_run(when: Any, reason: str) -> None:
    """Validation rejects these first; should one reach a run, the stage is skipped, even
    under `not`, and the reason says why."""
    assert evaluate(when, EVENT) == Decision(False, reason)


def test_a_bad_path_pattern_is_reported_in_pathspec_words() -> None:
    decision = evaluate({"not": {"paths": ["docs/**", "a\\"]}}, EVENT)
    assert not decision.run and decision.reason.startswith("when.not.paths: invalid: ")
    assert "a\\" in decision.reason


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    when: dict[str, Any] = {"branch": "feature/*"}
    for _ in range(2_000):
        when = {"not": {"not": when}}
    decision = evaluate(when, EVENT)
    assert decision.run is False and decision.reason.endswith(": invalid: nested too deeply")
    assert [message for _, message in problems(when)] == ["nested too deeply"]


def test_reasons_stay_short_and_on_one_line() -> None:
    long = "x" * 500
    ctx = WhenContext(
        branch=long + "\n" + long, changed_files=tuple(f"{long}/{i}" for i in range(50)), labels=(long,) * 9
    )
    for when in (
        {"branch": [long] * 9},
        {"paths": [long] * 9},
        {"labels": [long] * 9},
        {"variables": {long: long}},
        {"expr": " or ".join(["a"] * 300)},
        {"or": [{"branch": long}] * 30},
    ):
        reason = evaluate(when, ctx).reason
        assert len(reason) <= MAX_REASON and "\n" not in reason, reason
    assert evaluate(
        {"paths": "docs/**"}, WhenContext(changed_files=tuple(f"f{i}" for i in range(9)))
    ).reason == ("when.paths: no changed file matches docs/** (changed: f0, f1, f2, f3, … (+5 more))")


def test_problems_for_load_time_validation() -> None:
    when = {
        "branch": "main",
        "expr": "a ==",
        "or": [],
        "not": {"variables": {"x": [1]}, "paths": 7},
        "all": [{"expr": 'enviroment == "prod"'}, {"labels": []}],
        "any": [{"nope": 1}],
    }
    assert problems(when, known=lambda name: name == "environment") == [
        (("expr",), "unexpected end of expression at column 5"),
        (("or",), "must be a non-empty list of mappings"),
        (("not", "variables", "x"), "must be a string, number or boolean"),
        (("not", "paths"), "must be a string or a list of strings"),
        (("all", 0, "expr"), "unknown name 'enviroment'"),
        (("all", 1, "labels"), "an empty list never matches"),
        (
            ("any", 0, "nope"),
            "unknown condition (use one of branch, paths, labels, variables, expr, or, not, all, any)",
        ),
    ]
    assert problems(DEPLOY_DOCS) == problems(FULL_TEST) == []
    assert problems([]) == [((), "must be a mapping of conditions")]


SCHEMA = json.loads((Path(orchestrate.spec.__file__).parent / "schema.json").read_text())


@pytest.mark.parametrize("when", [w for w, _, _ in CASES + COMBINED if w is not None])
def test_every_condition_here_is_valid_by_the_schema(when: Any) -> None:
    schema = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/when"}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(when)) == []


conditions = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "branch": st.sampled_from(["main", "feature/*", ["a", "!b"], "**"]),
            "paths": st.sampled_from(["docs/**", ["src/**", "!*.md"], []]),
            "labels": st.lists(st.sampled_from(["docs", "x"]), max_size=2),
            "variables": st.dictionaries(
                st.sampled_from(["environment", "debug"]), st.sampled_from(["staging", True, 3])
            ),
            "expr": st.sampled_from(["true", "environment == 'staging'", "len(labels) > 0", "a ==", "x in"]),
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "or": inner | st.lists(inner, max_size=3),
            "not": inner,
            "all": st.lists(inner, max_size=3),
            "any": st.lists(inner, max_size=3),
            "branch": st.just("feature/*"),
        },
    ),
    max_leaves=10,
)
contexts = st.builds(
    WhenContext,
    branch=st.none() | st.sampled_from(["main", "feature/x", "b"]),
    changed_files=st.none()
    | st.lists(st.sampled_from(["src/a.py", "docs/a.md", "x.md"]), max_size=3).map(tuple),
    labels=st.lists(st.sampled_from(["docs", "x"]), max_size=2).map(tuple),
    variables=st.dictionaries(
        st.sampled_from(["environment", "debug"]), st.sampled_from(["staging", "true"])
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, contexts)
def test_evaluate_always_decides(when: dict[str, Any], ctx: WhenContext) -> None:
    decision = evaluate(when, ctx)
    assert len(decision.reason) <= MAX_REASON and "\n" not in decision.reason
    assert decision.reason.startswith(HOLD) is decision.run
    assert decision.reason.startswith("when")
    negated = evaluate({"not": when}, ctx)
    assert negated.run is (not decision.run) or "invalid" in decision.reason


def test_importing_when_loads_no_heavy_module() -> None:
    code = "import sys, orchestrate.spec.when; print(sorted({'pathspec', 'yaml', 'jsonschema', 'networkx'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
