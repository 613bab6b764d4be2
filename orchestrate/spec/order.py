"""Stage order (DESIGN §2 "Order"): depends_on / parallel_with / file order → ``needs``.

Pure Python on purpose: networkx costs more to import than validating a whole file,
and this runs on every load. graph.py builds its DiGraph from the ``needs`` found
here; an invalid order never reaches it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from orchestrate.spec.marks import Document, FieldPath
from orchestrate.spec.schema_errors import did_you_mean

_CYCLE_HINT = (
    '"→" reads "depends on"; a stage without depends_on or parallel_with depends on the stage before it'
)


def resolve_needs(stages: list[dict[str, Any]], doc: Document) -> list[tuple[str, ...]] | None:
    """Each stage's dependencies in file order; None (with issues in ``doc``) when invalid."""
    n = len(stages)
    index: dict[str, int] = {}
    for i, stage in enumerate(stages):
        index.setdefault(stage["name"], i)
    ok = True
    needs: list[list[int] | None] = [None] * n
    beside: list[int | None] = [None] * n  # parallel_with target, when valid

    for i, stage in enumerate(stages):
        name, deps, par = stage["name"], stage.get("depends_on"), stage.get("parallel_with")
        base: FieldPath = ("stages", i)
        if deps is not None and par is not None:
            hint = f'parallel_with: {par} already means "the dependencies of {par}"'
            doc.add((*base, "parallel_with"), "give depends_on or parallel_with, not both", hint, key=True)
            ok = False
        if deps is not None:
            own: list[int] = []
            for j, dep in enumerate([deps] if isinstance(deps, str) else deps):
                at = (*base, "depends_on", j)
                if dep == name:
                    doc.add(at, f'stage "{name}" depends on itself')
                    ok = False
                elif dep not in index:
                    doc.add(at, f'unknown stage "{dep}"', stage_hint(dep, index))
                    ok = False
                else:
                    own.append(index[dep])
            needs[i] = own
        elif par is not None:
            at = (*base, "parallel_with")
            if par == name:
                doc.add(at, f'stage "{name}" cannot run in parallel with itself')
                ok, needs[i] = False, []
            elif par not in index:
                doc.add(at, f'unknown stage "{par}"', stage_hint(par, index))
                ok, needs[i] = False, []
            else:
                beside[i] = index[par]
        else:
            needs[i] = [i - 1] if i else []

    ok = _resolve_parallel(stages, needs, beside, doc) and ok
    resolved = [sorted(set(deps or ())) for deps in needs]
    if ok:
        ok = _report_cycles(stages, resolved, doc)
    if not ok:
        return None
    return [tuple(stages[j]["name"] for j in deps) for deps in resolved]


def stage_hint(name: str, index: dict[str, int]) -> str:
    names = list(index)
    listed = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    return did_you_mean(name, names) or f"stages are: {listed}"


def _resolve_parallel(
    stages: list[dict[str, Any]], needs: list[list[int] | None], beside: list[int | None], doc: Document
) -> bool:
    """Give each parallel_with stage its target's dependencies, following chains of them."""
    ok = True
    for i in range(len(stages)):
        if needs[i] is not None:
            continue
        chain = [i]
        j = beside[i]
        assert j is not None
        while needs[j] is None and j not in chain:
            chain.append(j)
            j = beside[j]
            assert j is not None
        if needs[j] is None:  # the chain came back on itself
            loop = chain[chain.index(j) :]
            start = loop.index(min(loop))
            loop = loop[start:] + loop[:start]
            names = " → ".join(stages[k]["name"] for k in [*loop, loop[0]])
            doc.add(("stages", loop[0], "parallel_with"), f"parallel_with loop: {names}")
            ok = False
            for k in chain:
                needs[k] = []
            continue
        target = needs[j]
        assert target is not None
        for k in chain:
            if k in target:
                name, par = stages[k]["name"], stages[k]["parallel_with"]
                doc.add(
                    ("stages", k, "parallel_with"),
                    f'parallel_with "{par}" makes "{name}" depend on itself',
                    f'"{par}" runs after "{name}", so they cannot run side by side',
                )
                ok = False
            needs[k] = [d for d in target if d != k]
    return ok


def _report_cycles(stages: list[dict[str, Any]], needs: list[list[int]], doc: Document) -> bool:
    ok = True
    for component in _strongly_connected(needs):
        if len(component) < 2:
            continue
        ok = False
        members = set(component)
        start = min(component)
        cycle = _shortest_cycle(start, needs, members)
        names = " → ".join(stages[k]["name"] for k in cycle)
        stage = stages[start]
        key = next((k for k in ("depends_on", "parallel_with") if k in stage), None)
        path: FieldPath = ("stages", start, key) if key else ("stages", start)
        doc.add(path, f"dependency cycle: {names}", _CYCLE_HINT)
    return ok


def _shortest_cycle(start: int, needs: list[list[int]], members: set[int]) -> list[int]:
    """start → … → start along dependency edges, breadth first so the message is short."""
    came_from: dict[int, int] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in needs[v]:
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in came_from and w != start:
                came_from[w] = v
                queue.append(w)
    raise AssertionError("a strongly connected component without a cycle")


def _strongly_connected(edges: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm, iterative: a 1,000-stage chain would overflow recursion."""
    n = len(edges)
    order = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(n):
        if order[root] != -1:
            continue
        work = [(root, 0)]
        while work:
            v, pos = work[-1]
            if pos == 0 and order[v] == -1:
                order[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            descended = False
            while pos < len(edges[v]):
                w = edges[v][pos]
                pos += 1
                if order[w] == -1:
                    work[-1] = (v, pos)
                    work.append((w, 0))
                    descended = True
                    break
                if on_stack[w]:
                    low[v] = min(low[v], order[w])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == order[v]:
                component: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    component.append(w)
                    if w == v:
                        break
                components.append(component)
    return components
