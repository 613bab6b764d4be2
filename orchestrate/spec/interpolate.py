"""``${...}`` references in run/task/env text (DESIGN §2 "Interpolation").

``${name}`` is replaced by ``lookup(name)``; ``$$`` stands for a literal ``$`` (so a
shell variable is written ``$${HOME}`` or simply ``$HOME``). With ``shell=True`` every
substituted value is quoted with ``shlex.quote``: a value can never become shell
syntax, whatever it contains. This runs for every stage start, so it stays a single
regex pass with no imports beyond the stdlib.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

# `$$` is matched first so that `$${x}` is an escaped `$` followed by literal `{x}`.
# An unclosed `${` is left as text: the shell will complain about it more precisely.
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}")


def references(text: str) -> list[str]:
    """The names referenced in ``text``, in order, stripped of surrounding blanks."""
    if "${" not in text:
        return []
    return [m.group(1).strip() for m in _TOKEN.finditer(text) if m.group(1) is not None]


def interpolate(text: str, lookup: Callable[[str], str | None], *, shell: bool) -> str:
    """``text`` with every reference substituted; KeyError(name) for an unresolved one."""
    if "$" not in text:
        return text

    def substitute(m: re.Match[str]) -> str:
        raw = m.group(1)
        if raw is None:
            return "$"
        name = raw.strip()
        value = lookup(name)
        if value is None:
            raise KeyError(name)
        return shlex.quote(value) if shell else value

    return _TOKEN.sub(substitute, text)
