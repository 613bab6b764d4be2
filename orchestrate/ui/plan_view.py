"""Rendering of plans, graphs and validation results."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from orchestrate.graph import Dag
from orchestrate.services.plan import Plan
from orchestrate.ui.text import format_duration


def plan_view(plan: Plan) -> RenderableType:
    """Levels, and per stage what it waits for, its settings and its exact command."""
    n = sum(len(level) for level in plan.levels)
    parts: list[RenderableType] = [
        Text.assemble(
            (plan.pipeline, "bold"),
            f": {n} stages in {len(plan.levels)} levels, up to {plan.max_parallel} at once"
            " (dry run: nothing runs, nothing is stored)",
        )
    ]
    for depth, level in enumerate(plan.levels, 1):
        together = " (in parallel)" if len(level) > 1 else ""
        parts.append(Text(f"level {depth}{together}", style="bold"))
        for s in level:
            facts = [f"after {', '.join(s.needs)}" if s.needs else "root", s.kind]
            if s.timeout:
                facts.append(f"timeout {format_duration(s.timeout)}")
            if s.retries:
                facts.append(f"retry {s.retries}")
            facts.append(f"on failure {s.on_failure}")
            if s.optional:
                facts.append("optional")
            if s.environment:
                facts.append(f"environment {s.environment}")
            parts.append(Text.assemble("  ", (s.name, "cyan"), "  ", (", ".join(facts), "dim")))
            if s.skip:
                parts.append(Text(f"    would be skipped: {s.skip}", style="yellow"))
            lines = s.command.splitlines() or [""]
            parts.append(Text("    $ " + "\n      ".join(lines)))
    parts.append(Text("critical path: " + " → ".join(plan.critical_path), style="dim"))
    return Group(*parts)


def graph_text(dag: Dag) -> str:
    lines = []
    for depth, names in enumerate(dag.levels(), 1):
        lines.append(f"level {depth}:")
        for name in names:
            needs = dag.preds[name]
            lines.append(f"  {name}" + (f"  ← {', '.join(needs)}" if needs else ""))
    return "\n".join(lines)


def _mermaid_id(name: str, ids: dict[str, str]) -> str:
    return ids.setdefault(name, f"s{len(ids)}")


def graph_mermaid(dag: Dag) -> str:
    ids: dict[str, str] = {}
    lines = ["flowchart TD"]
    for name in dag.order:
        label = name.replace('"', "#quot;")
        lines.append(f'  {_mermaid_id(name, ids)}["{label}"]')
    for name in dag.order:
        for p in dag.preds[name]:
            lines.append(f"  {_mermaid_id(p, ids)} --> {_mermaid_id(name, ids)}")
    return "\n".join(lines)


def graph_dot(dag: Dag, title: str) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {q(title)} {{", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f"  {q(n)};" for n in dag.order]
    lines += [f"  {q(p)} -> {q(n)};" for n in dag.order for p in dag.preds[n]]
    lines.append("}")
    return "\n".join(lines)
