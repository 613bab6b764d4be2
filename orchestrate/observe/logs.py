"""Job logs and the activity log: markdown files under the workspace's logs/ (DESIGN §7).

A job's log is ``logs/<pipeline>/<step>/<job>.md``, created by the first append; every
append adds one section under a timestamp heading, in one ``write`` to a file opened for
appending, so concurrent appends never interleave inside a section. Finishing a pipeline
adds one line to ``logs/activity.md``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from orchestrate.domain.observe import ReportedJob, ReportedPipeline

ACTIVITY_FILE = "activity.md"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[0-9a-z]{16}$")


def slug(name: str) -> str:
    """A step name as one safe path component: ``wrap-up`` stays, ``../x y`` becomes ``x-y``."""
    return _UNSAFE.sub("-", name).strip(".-") or "step"


def job_log_path(job: ReportedJob) -> str:
    """Where the job's log goes, relative to the workspace."""
    return f"logs/{job.pipeline_id}/{slug(job.step)}/{job.id}.md"


def stamp(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(at))


def section(markdown: str, at: float, title: str | None) -> str:
    heading = f"## {stamp(at)}" + (f" · {title.strip()}" if title and title.strip() else "")
    body = markdown.strip("\n")
    return f"{heading}\n\n{body}\n\n" if body else f"{heading}\n\n"


def append_section(path: Path, text: str, header: str) -> int:
    """Append ``text`` to the log at ``path``, writing ``header`` first when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = ((header if os.fstat(fd).st_size == 0 else "") + text).encode("utf-8")
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        return written
    finally:
        os.close(fd)


def log_header(job: ReportedJob, pipeline: ReportedPipeline) -> str:
    about = f"{pipeline.type.value} “{pipeline.title}” · step {job.step} · job {job.id}"
    description = f"\n\n{job.description.strip()}" if job.description and job.description.strip() else ""
    return f"# {job.name}\n\n_{about}_{description}\n\n"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def activity_line(p: ReportedPipeline, now: float) -> str:
    sprint = f" (sprint {p.sprint})" if p.sprint else ""
    jobs = f"{p.job_count} job{'s' if p.job_count != 1 else ''}"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.finished_at or now))
    return (
        f"- {when} · {p.type.value} “{p.title}”{sprint} {p.status.value} in "
        f"{format_seconds(p.duration(now))} · {jobs} · [logs]({p.id}/)\n"
    )


def append_activity(logs_dir: Path, p: ReportedPipeline, now: float) -> None:
    append_section(logs_dir / ACTIVITY_FILE, activity_line(p, now), "# Activity\n\n")


def delete_pipeline_logs(logs_dir: Path, pipeline_id: str, dry_run: bool = False) -> int:
    """Delete ``logs/<pipeline>/`` (only a folder named like an id, directly under logs/); files removed."""
    if not _ID.match(pipeline_id):
        return 0
    folder = logs_dir / pipeline_id
    if not folder.is_dir():
        return 0
    count = sum(1 for f in folder.rglob("*") if f.is_file())
    if not dry_run:
        shutil.rmtree(folder)
    return count
