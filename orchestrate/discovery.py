"""The stages of the ``discovery`` template: collect signals, score and rank them, emit the top pick.

    collect   JSONL files (globs, relative to the workspace), commands printing JSONL
              (``cmd:ARGV``, no shell) and the built-in samples (``builtin:samples``), from
              the ``sources`` variable (comma-separated) → ``<data_dir>/<run>/signals.jsonl``
    rank      groups signals by problem, scores each group, writes ``ranked.json`` and ``digest.md``
    pick      emits ``<pick_event>`` (default ``discovery.picked``) with the top idea as payload,
              which starts every pipeline whose trigger listens to it

A signal is one JSON object a line: ``title`` (required), ``problem`` (groups signals;
default: the title), ``quote``, ``source``, ``url``, ``date`` (YYYY-MM-DD), ``engagement``
(votes, comments, stars). Nothing here needs the network: the samples let the template
run offline end to end (their dates are so many days before the run's day).

Recency counts from the run's day: today, or the day of ``ORCHESTRATE_NOW`` when set. A
bad variable (``top``, ``min_score``, ``sources``) fails its stage with one line naming it.
"""

from __future__ import annotations

import glob
import json
import math
import re
import shlex
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrate.atomic import write_atomically
from orchestrate.engine.python_stage import PythonStageError, StageContext

# Words people use when something hurts; each found in a quote adds to the pain score.
PAIN = (
    "hate",
    "painful",
    "manually",
    "waste",
    "frustrat",
    "broken",
    "wish",
    "anyone know",
    "would pay",
    "slow",
)
WEIGHTS = {"pain": 3.0, "frequency": 2.0, "reach": 2.0, "recency": 1.0}

SAMPLE_SIGNALS: tuple[dict[str, Any], ...] = (
    {
        "source": "forum",
        "problem": "reconciling bank statements by hand",
        "title": "Reconciling bank statements every month takes me two days",
        "quote": "I hate doing this manually, I would pay for anything that matches transactions.",
        "url": "https://example.org/t/1",
        "age_days": 2,
        "engagement": 48,
    },
    {
        "source": "issues",
        "problem": "reconciling bank statements by hand",
        "title": "CSV import cannot match split payments",
        "quote": "We still reconcile split payments manually; it is painful and slow.",
        "url": "https://example.org/i/7",
        "age_days": 1,
        "engagement": 31,
    },
    {
        "source": "chat",
        "problem": "reconciling bank statements by hand",
        "title": "Anyone know a tool for bank reconciliation?",
        "quote": "Anyone know a tool that does this? Spreadsheets are broken for it.",
        "url": "https://example.org/c/3",
        "age_days": 0,
        "engagement": 12,
    },
    {
        "source": "forum",
        "problem": "chasing clients for missing receipts",
        "title": "Chasing clients for receipts is a waste of my week",
        "quote": "Half my week is a waste: emails asking for the same receipts again.",
        "url": "https://example.org/t/2",
        "age_days": 15,
        "engagement": 22,
    },
    {
        "source": "issues",
        "problem": "chasing clients for missing receipts",
        "title": "Reminder emails for missing documents",
        "quote": "I wish reminders went out by themselves.",
        "url": "https://example.org/i/9",
        "age_days": 7,
        "engagement": 9,
    },
    {
        "source": "chat",
        "problem": "tracking filing deadlines per client",
        "title": "Which client files what when?",
        "quote": "A shared calendar works, mostly.",
        "url": "https://example.org/c/8",
        "age_days": 50,
        "engagement": 4,
    },
    {
        "source": "forum",
        "problem": "exporting reports to the tax office format",
        "title": "The export to the tax office format is broken again",
        "quote": "Broken again after the update; frustrating.",
        "url": "https://example.org/t/5",
        "age_days": 5,
        "engagement": 15,
    },
)


def _read_jsonl(text: str, where: str, ctx: StageContext) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            ctx.print(f"{where}:{n}: not JSON ({e.msg}); line skipped")
            continue
        if not isinstance(item, dict) or not str(item.get("title", "")).strip():
            ctx.print(f"{where}:{n}: a signal is a JSON object with a title; line skipped")
            continue
        out.append(item)
    return out


def _source(spec: str, ctx: StageContext) -> list[dict[str, Any]]:
    root = Path(ctx.workspace)
    if spec == "builtin:samples":
        today = _today(ctx)
        return [_dated(s, today) for s in SAMPLE_SIGNALS]
    if spec.startswith("cmd:"):
        try:
            argv = shlex.split(spec[4:])
        except ValueError as e:
            raise PythonStageError(f"variable sources: {spec!r}: {e}") from None
        if not argv:
            raise PythonStageError(f"variable sources: {spec!r}: no command after cmd:")
        try:
            done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300, check=False)
        except FileNotFoundError:
            raise PythonStageError(f"variable sources: {spec!r}: no such command {argv[0]!r}") from None
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PythonStageError(f"variable sources: {spec!r}: {e}") from None
        if done.returncode != 0:
            raise PythonStageError(f"source {spec!r} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return _read_jsonl(done.stdout, spec, ctx)
    paths = sorted(glob.glob(str(root / spec))) if not Path(spec).is_absolute() else sorted(glob.glob(spec))
    if not paths:
        raise PythonStageError(f"source {spec!r}: no such file (relative to {root})")
    found: list[dict[str, Any]] = []
    for path in paths:
        found += _read_jsonl(Path(path).read_text(encoding="utf-8"), path, ctx)
    return found


def _dated(sample: dict[str, Any], today: date) -> dict[str, Any]:
    out = {k: v for k, v in sample.items() if k != "age_days"}
    out["date"] = (today - timedelta(days=int(sample["age_days"]))).isoformat()
    return out


def _today(ctx: StageContext) -> date:
    """The run's day: ORCHESTRATE_NOW's when set (a rehearsal, a test), else today."""
    from orchestrate.worker.config import env_now

    try:
        at = env_now(ctx.env)
    except Exception:  # a bad ORCHESTRATE_NOW is the worker's to refuse; here: today
        at = None
    return date.today() if at is None else datetime.fromtimestamp(at).date()


def _number(ctx: StageContext, name: str, default: str, low: float, whole: bool) -> float:
    """A numeric variable, or a one-line stage error naming it."""
    raw = str(ctx.variables.get(name, default)).strip() or default
    kind = "a whole number" if whole else "a number"
    try:
        value = float(int(raw)) if whole else float(raw)
    except ValueError:
        raise PythonStageError(f"variable {name}: {raw!r} is not {kind} (e.g. {name}={default})") from None
    if not math.isfinite(value) or value < low:
        raise PythonStageError(f"variable {name}: {raw!r} must be at least {low:g} (e.g. {name}={default})")
    return value


def _folder(ctx: StageContext) -> Path:
    folder = Path(ctx.workspace) / ctx.variables.get("data_dir", "data/discovery") / ctx.run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def collect(ctx: StageContext) -> dict[str, Any]:
    """Every configured source into one signals.jsonl; a failing source fails the stage, saying which."""
    sources = [s.strip() for s in ctx.variables.get("sources", "builtin:samples").split(",") if s.strip()]
    signals: list[dict[str, Any]] = []
    for spec in sources:
        found = _source(spec, ctx)
        ctx.print(f"{spec}: {len(found)} signal(s)")
        signals += found
    path = _folder(ctx) / "signals.jsonl"
    write_atomically(path, "".join(json.dumps(s) + "\n" for s in signals).encode())
    return {"signals": str(path), "count": len(signals)}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def score(group: list[dict[str, Any]], today: date) -> dict[str, float]:
    """Each criterion 0..5: pain (pain words per quote), frequency (mentions), reach (engagement), recency."""
    quotes = " ".join(str(s.get("quote", "")) + " " + str(s.get("title", "")) for s in group).lower()
    pain = min(5.0, sum(quotes.count(word) for word in PAIN) * 5.0 / (2 * len(group) + 1))
    frequency = min(5.0, float(len(group)) * 5.0 / 3.0)
    engagement = sum(float(s.get("engagement") or 0) for s in group)
    reach = min(5.0, math.log10(1 + engagement) * 2.5)
    ages = []
    for s in group:
        try:
            ages.append(max(0, (today - date.fromisoformat(str(s.get("date", "")))).days))
        except ValueError:
            continue
    recency = max(0.0, 5.0 - min(ages) / 14.0) if ages else 0.0
    return {
        "pain": round(pain, 2),
        "frequency": round(frequency, 2),
        "reach": round(reach, 2),
        "recency": round(recency, 2),
    }


def rank(ctx: StageContext) -> dict[str, Any]:
    """Group, score, rank: ranked.json (best first) and digest.md, next to signals.jsonl."""
    top_n = int(_number(ctx, "top", "10", 1, whole=True))
    folder = _folder(ctx)
    signals = [
        json.loads(line) for line in (folder / "signals.jsonl").read_text().splitlines() if line.strip()
    ]
    if not signals:
        raise PythonStageError("no signals collected: check the sources variable and the collect log")
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in signals:
        groups.setdefault(_key(str(s.get("problem") or s["title"])), []).append(s)
    today = _today(ctx)
    ideas: list[dict[str, Any]] = []
    for group in groups.values():
        scores = score(group, today)
        total = sum(WEIGHTS[k] * v for k, v in scores.items())
        best = max(group, key=lambda s: float(s.get("engagement") or 0))
        ideas.append(
            {
                "problem": str(group[0].get("problem") or group[0]["title"]),
                "title": str(best["title"]),
                "total": round(total, 2),
                "scores": scores,
                "mentions": len(group),
                "sources": sorted({str(s.get("source", "?")) for s in group}),
                "evidence": [s["url"] for s in group if s.get("url")],
                "quotes": [s["quote"] for s in group if s.get("quote")][:3],
            }
        )
    ideas.sort(key=lambda i: (-i["total"], i["problem"]))
    top = ideas[:top_n]
    best_total = 5 * sum(WEIGHTS.values())
    write_atomically(folder / "ranked.json", (json.dumps(top, indent=2) + "\n").encode())
    lines = [f"# Discovery digest: {len(signals)} signals, {len(ideas)} problems, top {len(top)}", ""]
    for n, idea in enumerate(top, 1):
        lines.append(
            f"{n}. **{idea['problem']}**: {idea['total']:.1f}/{best_total:.0f}, "
            f"{idea['mentions']} mention(s) in {', '.join(idea['sources'])}"
        )
        lines += [f"   > {q}" for q in idea["quotes"][:1]]
    write_atomically(folder / "digest.md", ("\n".join(lines) + "\n").encode())
    ctx.print("\n".join(lines))
    return {
        "ranked": str(folder / "ranked.json"),
        "digest": str(folder / "digest.md"),
        "top": top[0]["problem"],
        "top_score": top[0]["total"],
    }


def pick(ctx: StageContext) -> dict[str, Any]:
    """Emit the pick event for the top idea (when it scores at least ``min_score``): it starts its pipeline."""
    from orchestrate.settings import resolve
    from orchestrate.store import open_store
    from orchestrate.triggers import events

    ranked = json.loads(Path(ctx.outputs["rank"]["ranked"]).read_text())
    best = ranked[0]
    minimum = _number(ctx, "min_score", "0", 0, whole=False)
    if best["total"] < minimum:
        ctx.print(f"top idea scores {best['total']} < min_score {minimum}: nothing picked")
        return {"picked": "none"}
    name = ctx.variables.get("pick_event", "discovery.picked")
    settings = resolve(Path(ctx.workspace), ctx.env, Path(ctx.workspace))
    payload = {"idea": best, "ranked": ctx.outputs["rank"]["ranked"], "digest": ctx.outputs["rank"]["digest"]}
    payload["discovery_run"] = ctx.run_id
    event = events.build_event(
        name, payload, branch=None, labels=[], changed_files=[], user=settings.user, dry_run=False
    )
    started = events.emit(settings, open_store(settings.store_location), event)
    runs = [run for _, run in started if run]
    ctx.print(
        f"picked {best['problem']!r}; event {event.id} ({name}) started {len(runs)} run(s): {', '.join(runs)}"
    )
    return {"picked": best["problem"], "event": event.id, "runs": ",".join(runs)}
