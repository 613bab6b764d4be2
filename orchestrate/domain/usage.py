"""Tokens and cost of a run, from its stages' reserved outputs: one computation for every view.

``pipeline status`` (ui/run_view.py) and ``GET /api/pipeline-runs/{id}`` (and the
dashboard's run page) all read usage through these functions, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def stage_usage(outputs: Mapping[str, Any]) -> tuple[int, int, float]:
    """(input tokens, output tokens, cost in USD) from one stage's outputs; junk counts as 0."""

    def number(key: str) -> float:
        try:
            return max(0.0, float(outputs.get(key) or 0))
        except (TypeError, ValueError):
            return 0.0

    return int(number("input_tokens")), int(number("output_tokens")), number("cost_usd")


def total_usage(stages: Iterable[Mapping[str, Any]]) -> tuple[int, float]:
    """(tokens in + out, cost in USD) over stages' outputs."""
    tokens = 0
    cost = 0.0
    for outputs in stages:
        tokens_in, tokens_out, money = stage_usage(outputs)
        tokens += tokens_in + tokens_out
        cost += money
    return tokens, cost


def usage_json(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """One stage's usage as the API carries it."""
    tokens_in, tokens_out, cost = stage_usage(outputs)
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "tokens": tokens_in + tokens_out,
        "cost_usd": round(cost, 6),
    }
