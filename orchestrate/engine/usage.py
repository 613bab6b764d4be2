"""Usage (model, tokens, cost) an agent reports, read from the end of its output (DESIGN §6; issue 8).

outputs          the stage wrote the reserved keys to $ORCHESTRATE_OUTPUT itself (nothing to parse)
json-last-line   the last line of output that is a JSON object; ``usage_paths`` maps each
                 reserved key to a dotted path in it (default: the key itself)
claude-json      Claude Code's ``--output-format json`` result: total_cost_usd (or cost_usd),
                 usage.input_tokens (+ cache tokens), usage.output_tokens, model / modelUsage
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RESERVED = ("model", "input_tokens", "output_tokens", "cost_usd", "prompt_variant", "skill_version")
TAIL = 256 * 1024  # usage is at the end of the output; never read a whole log


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    start = text.rfind("\n{")  # a pretty-printed object at the end
    if start >= 0 or text.lstrip().startswith("{"):
        try:
            value = json.loads(text[start + 1 :] if start >= 0 else text)
            return value if isinstance(value, dict) else None
        except json.JSONDecodeError:
            return None
    return None


def _at(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _claude(data: Mapping[str, Any]) -> dict[str, Any]:
    usage = data.get("usage") if isinstance(data.get("usage"), Mapping) else {}
    assert isinstance(usage, Mapping)
    tokens_in = sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    model = data.get("model")
    if not model and isinstance(data.get("modelUsage"), Mapping) and data["modelUsage"]:
        model = next(iter(data["modelUsage"]))
    return {
        "model": model,
        "input_tokens": tokens_in if usage else None,
        "output_tokens": usage.get("output_tokens"),
        "cost_usd": data.get("total_cost_usd", data.get("cost_usd")),
    }


def parse_usage(kind: str, log_path: str, paths: Mapping[str, str] | None = None) -> dict[str, str]:
    """The reserved output keys found in the output's tail; {} when there are none."""
    if kind == "outputs":
        return {}
    data = _last_json(_tail(log_path))
    if data is None:
        return {}
    if kind == "claude-json":
        found = _claude(data)
    else:
        found = {key: _at(data, (paths or {}).get(key, key)) for key in RESERVED}
    return {k: str(v) for k, v in found.items() if v is not None and v != ""}
