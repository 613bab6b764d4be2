"""Checks the schema cannot express: names that must exist, one kind of work, order, references.

Runs only on schema-valid data, so shapes and types can be taken for granted here.
Every problem is added to the document's issues; nothing stops at the first.
"""

from __future__ import annotations

from typing import Any

from orchestrate.spec.interpolate import references
from orchestrate.spec.marks import Document, FieldPath
from orchestrate.spec.order import resolve_needs, stage_hint
from orchestrate.spec.references import (
    Scope,
    Upstream,
    check_text,
    experiment_names,
    matrix_keys,
    stage_texts,
)
from orchestrate.spec.when import problems

WORK_KEYS = ("agent", "run", "python", "uses")
_ONE_KIND = "a stage does exactly one of agent (+ task), run, python or uses: split it into two stages"


def check(data: dict[str, Any], doc: Document) -> list[tuple[str, ...]] | None:
    """Add every semantic issue to ``doc``; return each stage's ``needs`` when the order is valid."""
    stages: list[dict[str, Any]] = data["stages"]
    index: dict[str, int] = {}
    for i, stage in enumerate(stages):
        name = stage["name"]
        if name in index:
            first = doc.where(("stages", index[name], "name"))
            at = f" (first at line {first[0]})" if first else ""
            doc.add(("stages", i, "name"), f'duplicate stage name "{name}"{at}', "stage names must be unique")
        else:
            index[name] = i
    unique = len(index) == len(stages)

    for i, stage in enumerate(stages):
        _check_stage(("stages", i), stage, data, index, doc)
    _check_handlers(data.get("handlers") or {}, doc)
    _check_triggers(data, doc)
    _check_experiments(data.get("experiments"), index, doc)
    _check_variant_scope(data, doc)
    _check_budgets(data, doc)

    needs = resolve_needs(stages, doc)
    # Upstream questions need one acyclic graph with one stage per name.
    upstream = None
    if needs is not None and unique:
        upstream = Upstream({s["name"]: n for s, n in zip(stages, needs, strict=True)})
        for i, stage in enumerate(stages):
            _check_upstream(("stages", i), stage, upstream, doc)
    _check_references(data, index, upstream, doc)
    return needs


def _check_triggers(data: dict[str, Any], doc: Document) -> None:
    """A trigger may set declared variables from its event, and read nothing but the event."""
    declared = data.get("variables") or {}
    for i, trigger in enumerate(data.get("triggers") or ()):
        _check_cron(("triggers", i), trigger, doc)
        for name, value in (trigger.get("variables") or {}).items():
            path = ("triggers", i, "variables", name)
            if "event" not in trigger:
                doc.add(path, "only event triggers can set variables", "a cron run uses the file's variables")
            elif name not in declared:
                doc.add(path, f'"{name}" is not a variable of this pipeline', "declare it under variables:")
            elif isinstance(value, str):
                for ref in references(value):
                    if not ref.startswith("event."):
                        doc.add(path, f'"${{{ref}}}": a trigger can only read ${{event.*}}', None)


def _check_cron(path: FieldPath, trigger: dict[str, Any], doc: Document) -> None:
    """``cron:`` must be an expression croniter accepts, ``tz:`` a known zone; both only on cron."""
    if "cron" not in trigger:
        for key in ("tz", "catchup"):
            if key in trigger:
                doc.add((*path, key), f"{key} applies to cron triggers only", "remove it, or use cron:")
        return
    from orchestrate.spec.cron import problem

    issue = problem(trigger["cron"], trigger.get("tz"))
    if issue is not None:
        field = "tz" if issue.startswith(f'"{trigger.get("tz")}"') else "cron"
        doc.add((*path, field), issue, None)


def _work(obj: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [k for k in obj if k in keys]  # in file order, to point at the second one written


def _check_stage(
    base: FieldPath, stage: dict[str, Any], data: dict[str, Any], index: dict[str, int], doc: Document
) -> None:
    name = stage["name"]
    work = _work(stage, WORK_KEYS)
    if len(work) > 1:
        kinds = ", ".join(work[:-1]) + " and " + work[-1]
        count = {2: "two", 3: "three"}.get(len(work), "four")
        message = f'stage "{name}" does {count} kinds of work ({kinds})'
        doc.add((*base, work[1]), message, _ONE_KIND, key=True)
    if "task" in stage and "agent" not in stage:
        hint = "add agent: NAME (an agent from orchestrate.yaml), or use run: for a shell command"
        doc.add((*base, "task"), "task needs an agent", hint, key=True)
    elif not work and not stage.get("requires_approval"):
        hint = "give it run, agent (+ task), python or uses; or requires_approval: true for an approval gate"
        doc.add(base, f'stage "{name}" has no work', hint)
    if "with" in stage and "uses" not in stage:
        doc.add((*base, "with"), "with is only for uses (a stage that runs another pipeline)", key=True)
    if stage.get("uses") == data["name"]:
        doc.add(
            (*base, "uses"), f'stage "{name}" uses its own pipeline "{data["name"]}"', "that would never end"
        )

    if "when" in stage:
        for path, message in problems(stage["when"]):
            doc.add((*base, "when", *path), message)

    if not stage.get("requires_approval"):
        for key in ("approvers", "approval"):
            if key in stage:
                hint = f"add requires_approval: true, or remove {key}"
                doc.add((*base, key), f"{key} needs requires_approval: true", hint, key=True)
    approval = stage.get("approval") or {}
    if approval.get("on_timeout") == "escalate" and not approval.get("escalate_to"):
        doc.add((*base, "approval", "on_timeout"), "on_timeout: escalate needs escalate_to (users or groups)")
    for path, target in (
        ((*base, "approval", "rewind_to"), approval.get("rewind_to")),
        ((*base, "rollback_to"), stage.get("rollback_to")),
        ((*base, "repair", "stage"), (stage.get("repair") or {}).get("stage")),
    ):
        if target is not None and target not in index:
            doc.add(path, f'unknown stage "{target}"', stage_hint(target, index))
    repair = stage.get("repair")
    if repair and repair["stage"] == name:
        doc.add(
            (*base, "repair", "stage"), f'stage "{name}" cannot repair itself', "name a separate fix-up stage"
        )
    if "rollback" in stage:
        _check_action((*base, "rollback"), stage["rollback"], ("run", "agent"), doc, "rollback")


def _check_action(
    base: FieldPath, action: dict[str, Any], kinds: tuple[str, ...], doc: Document, what: str
) -> None:
    """A rollback or handler: exactly one kind of work, and task only with agent."""
    work = _work(action, kinds)
    spelled = ", ".join(kinds[:-1]) + " or " + kinds[-1] + " (+ task)"
    if len(work) > 1:
        doc.add((*base, work[1]), f"{what} does two kinds of work ({work[0]} and {work[1]})", key=True)
    if "task" in action and "agent" not in action:
        doc.add((*base, "task"), "task needs an agent", key=True)
    elif not work:
        doc.add(base, f"{what} has no work", f"give it {spelled}")


def _check_handlers(handlers: dict[str, Any], doc: Document) -> None:
    for when, items in handlers.items():
        seen: set[str] = set()
        for i, handler in enumerate(items):
            base: FieldPath = ("handlers", when, i)
            if handler["name"] in seen:
                doc.add((*base, "name"), f'duplicate handler name "{handler["name"]}" in {when}')
            seen.add(handler["name"])
            _check_action(base, handler, ("run", "python", "agent"), doc, "handler")


def _check_experiments(experiments: Any, index: dict[str, int], doc: Document) -> None:
    if not experiments:
        return
    pairs = (
        [(i, e) for i, e in enumerate(experiments)]
        if isinstance(experiments, list)
        else list(experiments.items())
    )
    names: set[str] = set()
    for key, experiment in pairs:
        base: FieldPath = ("experiments", key)
        name = experiment.get("name", key)
        if "." in str(name):  # ${variant.NAME.FIELD} would be ambiguous
            where = (*base, "name") if "name" in experiment else base
            doc.add(
                where,
                f'experiment name "{name}" contains "."',
                f"use - or _ instead (e.g. {str(name).replace('.', '-')}): ${{variant.NAME.FIELD}} reads a field",
                key="name" not in experiment,
            )
        if name in names:
            doc.add((*base, "name"), f'duplicate experiment name "{name}"')
        names.add(name)
        seen: set[str] = set()
        variants = experiment["variants"]
        if isinstance(variants, dict):  # {name: weight}: names are unique by construction
            weights = list(variants.values())
        else:
            weights = [v.get("weight", 1) for v in variants]
            for j, variant in enumerate(variants):
                if variant["name"] in seen:
                    doc.add((*base, "variants", j, "name"), f'duplicate variant name "{variant["name"]}"')
                seen.add(variant["name"])
        if not any(w > 0 for w in weights):
            doc.add((*base, "variants"), "every variant has weight 0", "give at least one a weight above 0")
        for j, stage in enumerate(experiment.get("stages") or ()):
            if stage not in index:
                doc.add((*base, "stages", j), f'unknown stage "{stage}"', stage_hint(stage, index))


def _check_variant_scope(data: dict[str, Any], doc: Document) -> None:
    """A stage outside an experiment's ``stages:`` does not get its variant: ``${variant.NAME}`` there is an error."""
    raw = data.get("experiments")
    if not raw:
        return
    only = {
        str(e.get("name", key)): set(e["stages"])
        for key, e in (list(enumerate(raw)) if isinstance(raw, list) else list(raw.items()))
        if isinstance(e, dict) and e.get("stages") is not None
    }
    if not only:
        return
    for i, stage in enumerate(data["stages"]):
        for rel, text, _ in stage_texts(stage):
            if not isinstance(text, str):
                continue
            for ref in references(text):
                rest = ref.removeprefix("variant.")
                if rest == ref:
                    continue
                name = rest if rest in only else rest.rpartition(".")[0]
                if name in only and stage["name"] not in only[name]:
                    listed = ", ".join(sorted(only[name])) or "none"
                    doc.add(
                        ("stages", i, *rel),
                        f'${{{ref}}}: experiment "{name}" does not apply to stage "{stage["name"]}" '
                        f"(its stages: {listed})",
                        f'add "{stage["name"]}" to the experiment\'s stages:, or remove the reference',
                    )


def _check_budgets(data: dict[str, Any], doc: Document) -> None:
    """A budget must set a limit: cost_usd or tokens (on_exceed alone limits nothing)."""
    places: list[tuple[FieldPath, Any]] = [(("budget",), data.get("budget"))]
    places += [(("stages", i, "budget"), s.get("budget")) for i, s in enumerate(data["stages"])]
    for path, budget in places:
        if isinstance(budget, dict) and budget.get("cost_usd") is None and budget.get("tokens") is None:
            doc.add(path, "budget sets no limit", "add cost_usd: DOLLARS and/or tokens: COUNT")


def _check_upstream(base: FieldPath, stage: dict[str, Any], upstream: Upstream, doc: Document) -> None:
    """Targets that must run before this stage: you rewind or roll back to an earlier point."""
    name = stage["name"]
    targets = (
        ("rollback_to", stage.get("rollback_to")),
        ("approval.rewind_to", (stage.get("approval") or {}).get("rewind_to")),
    )
    for label, target in targets:
        if target is None or target == name or target not in upstream.needs:
            continue  # absent, itself, or unknown (reported already)
        if not upstream(target, name):
            path = (*base, *label.split("."))
            doc.add(
                path,
                f'{label} "{target}" is not upstream of "{name}"',
                f'it must name "{name}" or a stage it depends on',
            )


def _check_references(
    data: dict[str, Any], index: dict[str, int], upstream: Upstream | None, doc: Document
) -> None:
    variables = set(data.get("variables") or {})
    names = index
    experiments = experiment_names(data.get("experiments"))
    for i, stage in enumerate(data["stages"]):
        matrix = stage.get("matrix")
        scope = Scope(
            variables,
            names,
            experiments,
            upstream=upstream,
            stage=stage["name"],
            matrix_keys=matrix_keys(matrix),
            has_matrix=matrix is not None,
        )
        for rel, text, is_rollback in stage_texts(stage):
            scope.include_self = is_rollback
            check_text(doc, ("stages", i, *rel), text, scope)
    # Handlers run when the run ends: every stage's outputs may exist by then.
    scope = Scope(variables, names, experiments)
    for when, items in (data.get("handlers") or {}).items():
        for j, handler in enumerate(items):
            for rel, text, _ in stage_texts(handler):
                check_text(doc, ("handlers", when, j, *rel), text, scope)
