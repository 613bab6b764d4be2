"""A pipeline's stages as a DAG: readiness, levels and exports.

Built from the resolved ``StageSpec.needs`` (spec/ already rejected cycles and
unknown names). Plain dicts keep the run path free of the networkx import
(≈0.1 s); ``to_networkx`` gives the DiGraph for analysis and rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from orchestrate.spec.model import PipelineSpec

if TYPE_CHECKING:
    import networkx as nx


class Dag:
    """Immutable dependency graph: ``preds[s]`` must finish before ``s`` starts."""

    __slots__ = ("order", "preds", "succs")

    def __init__(self, order: Iterable[str], preds: Mapping[str, Iterable[str]]) -> None:
        self.order: tuple[str, ...] = tuple(order)
        self.preds: dict[str, tuple[str, ...]] = {n: tuple(preds.get(n, ())) for n in self.order}
        succs: dict[str, list[str]] = {n: [] for n in self.order}
        for node, before in self.preds.items():
            for p in before:
                succs[p].append(node)
        self.succs: dict[str, tuple[str, ...]] = {n: tuple(v) for n, v in succs.items()}

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> Dag:
        return cls((s.name for s in spec.stages), {s.name: s.needs for s in spec.stages})

    def roots(self) -> list[str]:
        return [n for n in self.order if not self.preds[n]]

    def ready(self, done: Iterable[str]) -> list[str]:
        """Stages not in ``done`` whose every dependency is in ``done``, in file order."""
        finished = set(done)
        return [n for n in self.order if n not in finished and all(p in finished for p in self.preds[n])]

    def levels(self) -> list[list[str]]:
        """Stages grouped by the length of the longest dependency chain above them."""
        depth: dict[str, int] = {}
        for n in self.topological():
            depth[n] = 1 + max((depth[p] for p in self.preds[n]), default=-1)
        out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for n in self.order:
            out[depth[n]].append(n)
        return out

    def topological(self) -> list[str]:
        """Kahn's algorithm, ties broken by file order."""
        indeg = {n: len(self.preds[n]) for n in self.order}
        position = {n: i for i, n in enumerate(self.order)}
        ready = [n for n in self.order if indeg[n] == 0]
        out: list[str] = []
        while ready:
            ready.sort(key=position.__getitem__, reverse=True)
            n = ready.pop()
            out.append(n)
            for s in self.succs[n]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        return out

    def descendants(self, node: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.succs[node])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.succs[n])
        return seen

    def ancestors(self, node: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.preds[node])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.preds[n])
        return seen

    def to_networkx(self) -> nx.DiGraph:
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.order)
        g.add_edges_from((p, n) for n in self.order for p in self.preds[n])
        return nx.freeze(g)

    def critical_path(self) -> list[str]:
        """The longest chain of stages (by count): the floor on the run's length."""
        import networkx as nx

        return list(nx.dag_longest_path(self.to_networkx()))
