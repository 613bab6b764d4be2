"""Stage outputs written to ``$ORCHESTRATE_OUTPUT`` (the ``$GITHUB_OUTPUT`` convention).

Either a JSON object, or ``key=value`` lines, with ``key<<DELIM`` … ``DELIM``
for multi-line values.
"""

from __future__ import annotations

import json
import os

MAX_OUTPUT_BYTES = 1024 * 1024


class OutputError(ValueError):
    pass


def parse_outputs(text: str) -> dict[str, str]:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise OutputError(f"outputs: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        if not isinstance(data, dict):
            raise OutputError("outputs: JSON must be an object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise OutputError(f'outputs: "{key}<<{delim}" is never closed by a line "{delim}"')
            i += 1
            out[key.strip()] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value
        else:
            raise OutputError(f'outputs: line {i} is neither key=value nor key<<DELIM: "{line[:60]}"')
    return out


def read_outputs(path: str) -> dict[str, str]:
    """Outputs a stage left in ``path``; {} when it wrote none.

    The file is removed once read: the store keeps the (masked) outputs, and the raw
    file could hold a secret the stage wrote there.
    """
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return {}
    try:
        if size > MAX_OUTPUT_BYTES:
            raise OutputError(f"outputs: {size} bytes written to $ORCHESTRATE_OUTPUT; the limit is 1 MB")
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_outputs(f.read())
    finally:
        os.unlink(path)
