"""YAML text → plain data plus the line:column of every key and value.

``yaml.safe_load`` forgets where things were, so errors could not point at a line.
Here the document is composed into nodes (by libyaml when available) and walked
once, building the same plain data while recording a 1-based (line, column) for
each field path. The walk also catches what PyYAML silently accepts: duplicate keys
(the last one would win) and tags that are not plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrate.domain.errors import SpecIssue

FieldPath = tuple[str | int, ...]
Mark = tuple[int, int]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_STR, _MERGE = _TAG + "str", _TAG + "merge"
# Tags whose text we keep as a string: a date or binary blob in a pipeline is text.
_AS_TEXT = {_TAG + "timestamp", _TAG + "binary"}
_COLLECTION_TAGS = {_TAG + "map", _TAG + "seq", _TAG + "omap", _TAG + "pairs", _TAG + "set"}
# Guards against alias bombs ("billion laughs"): a real pipeline reuses an anchor a
# few times, not a hundred thousand; the total bounds the walk whatever the input.
_MAX_REUSES = 100_000
_MAX_NODES = 2_000_000
_MAX_C_DEPTH = 500
_BRACKETS = re.compile(r"[^\[\]{}]+")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: FieldPath) -> str:
    """``("stages", 3, "timeout")`` → ``stages[3].timeout`` (odd keys in brackets)."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f'["{part}"]')
    return "".join(out)


@dataclass
class Document:
    """Parsed data and where each part of it was written."""

    file: str
    data: Any = None
    values: dict[FieldPath, Mark] = field(default_factory=dict)  # start of each value
    keys: dict[FieldPath, Mark] = field(default_factory=dict)  # start of each mapping key
    issues: list[SpecIssue] = field(default_factory=list)

    def where(self, path: FieldPath, *, key: bool = False) -> Mark | None:
        """The mark of ``path`` (its key if asked and known), else of its nearest ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def issue(
        self, path: FieldPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> SpecIssue:
        mark = self.where(path, key=key)
        line, col = mark if mark else (None, None)
        return SpecIssue(self.file, line, col, format_path(path), message, hint)

    def add(self, path: FieldPath, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.issues.append(self.issue(path, message, hint, key=key))


class _TooLarge(Exception):
    pass


class _Walker:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0
        self.reuses = 0
        self.visited: set[int] = set()
        self.active: set[int] = set()  # ids of collection nodes being walked: a cycle of aliases

    @staticmethod
    def mark(node: Node) -> Mark:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def walk(self, node: Node, path: FieldPath) -> Any:
        self.count += 1
        if id(node) in self.visited:
            self.reuses += 1
        else:
            self.visited.add(id(node))
        if self.count > _MAX_NODES or self.reuses > _MAX_REUSES:
            raise _TooLarge
        self.doc.values[path] = self.mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            self.doc.add(path, "an alias refers to the collection that contains it")
            return None
        self.active.add(id(node))
        try:
            if node.tag not in _COLLECTION_TAGS:
                self.doc.add(path, f'unsupported YAML tag "{node.tag}"', "use plain YAML data")
            if isinstance(node, SequenceNode):
                return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: FieldPath) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _TAG + "int":
            return self.constructor.construct_yaml_int(node)
        if tag == _TAG + "float":
            return self.constructor.construct_yaml_float(node)
        if tag == _TAG + "bool":
            return self.constructor.construct_yaml_bool(node)
        if tag == _TAG + "null":
            return None
        if tag not in _AS_TEXT:
            self.doc.add(path, f'unsupported YAML tag "{tag}"', "use plain YAML data")
        return node.value

    def mapping(self, node: MappingNode, path: FieldPath) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        # Merge keys (`<<: *defaults`) first, so that explicit keys override them as YAML says.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self.merge(value_node, path))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, ScalarNode):
                self.doc.values.setdefault((*path, "?"), self.mark(key_node))
                self.doc.add((*path, "?"), "a key must be a plain value, not a list or a mapping")
                continue
            # The key as written: `on:` stays "on" instead of becoming True, `1:` stays "1".
            key = key_node.value
            sub = (*path, key)
            if key in result:
                first = self.doc.keys[sub][0]
                self.doc.issues.append(
                    SpecIssue(
                        self.doc.file,
                        *self.mark(key_node),
                        format_path(sub),
                        f'duplicate key "{key}" (first at line {first})',
                        "remove one of them: YAML would silently keep only the last",
                    )
                )
                continue
            self.doc.keys[sub] = self.mark(key_node)
            result[key] = self.walk(value_node, sub)
        return {**merged, **result} if merged else result

    def merge(self, value_node: Node, path: FieldPath) -> dict[str, Any]:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        own_mark = self.doc.values[path]
        out: dict[str, Any] = {}
        # Earlier sources win: walk them last so their values and marks are the ones kept.
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                self.doc.values[(*path, "<<")] = self.mark(source)
                self.doc.add((*path, "<<"), "a merge key (<<) takes a mapping or a list of mappings")
                continue
            out.update(self.walk(source, path))
        self.doc.values[path] = own_mark
        return out


def _loader_for(text: str) -> type:
    """libyaml composes recursively in C and crashes the process on absurdly deep flow
    nesting (``[[[[...``); above a bound that no pipeline approaches, the pure-Python
    composer is used instead, which fails with a RecursionError we can report."""
    depth = deepest = 0
    for char in _BRACKETS.sub("", text):  # counts brackets inside strings too: an upper bound
        depth = depth + 1 if char in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return _Loader if deepest < _MAX_C_DEPTH else yaml.SafeLoader


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    return lines[line][column : column + 1] if line < len(lines) else ""


def parse_yaml(text: str, file: str) -> Document:
    """Compose ``text``; syntax errors become issues (``data`` stays None)."""
    doc = Document(file)
    try:
        root = yaml.compose(text, Loader=_loader_for(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid syntax"
        hint = None
        if exc.context and exc.context_mark and exc.problem:
            hint = f"{exc.context} at line {exc.context_mark.line + 1}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        if problem.startswith("but found another document"):
            problem, hint = "a second document in the file", "one pipeline per file: remove the extra ---"
        elif mark and _char_at(text, mark.line, mark.column) == "\t":
            hint = "indent with spaces: YAML does not allow tabs"
        doc.issues.append(SpecIssue(file, line, col, "", f"invalid YAML: {problem}", hint))
        return doc
    except yaml.YAMLError as exc:
        doc.issues.append(SpecIssue(file, None, None, "", f"invalid YAML: {exc}"))
        return doc
    except RecursionError:
        doc.issues.append(SpecIssue(file, 1, 1, "", "the document is nested too deeply"))
        return doc
    if root is None:  # nothing but comments: the loader says "empty"
        return doc
    try:
        doc.data = _Walker(doc).walk(root, ())
    except _TooLarge:
        doc.issues.append(SpecIssue(file, 1, 1, "", "the document is too large (aliases expanding?)"))
    except RecursionError:
        doc.issues.append(SpecIssue(file, 1, 1, "", "the document is nested too deeply"))
    return doc
