"""Every SQL statement the sqlite3 code runs, against the tables defined in ``tables.py``.

They live together, as module constants, so that ``tests/store/test_schema.py`` can
compile each one against a schema built only from the SQLModel metadata and check
every table and column it touches: the raw SQL and the SQLModel classes cannot drift
apart unnoticed. Add new statements here, never inline in other modules.
"""

from __future__ import annotations

# -- pipeline versions --------------------------------------------------------------

SELECT_COMPILED = "SELECT version, compiled FROM pipeline_versions WHERE pipeline = ? AND digest = ?"

# A pipeline registered again after `pipeline delete` comes back.
UNDELETE_PIPELINE = "UPDATE pipelines SET deleted_at = NULL WHERE name = ? AND deleted_at IS NOT NULL"

INSERT_PIPELINE = (
    "INSERT INTO pipelines (name, enabled, created_at, updated_at) VALUES (?, TRUE, ?, ?) "
    "ON CONFLICT (name) DO NOTHING"
)

TOUCH_PIPELINE = "UPDATE pipelines SET updated_at = ? WHERE name = ?"

SELECT_VERSION = "SELECT version FROM pipeline_versions WHERE pipeline = ? AND digest = ?"

SELECT_LAST_VERSION = "SELECT COALESCE(MAX(version), 0) FROM pipeline_versions WHERE pipeline = ?"

INSERT_VERSION = (
    "INSERT INTO pipeline_versions (pipeline, version, digest, path, text, compiled, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)

# -- runs ---------------------------------------------------------------------------

INSERT_RUN = (
    "INSERT INTO runs (id, pipeline, version, digest, status, variables, created_at, "
    "triggered_by, parent_run_id, started_by, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

INSERT_STAGE = (
    "INSERT INTO stages (run_id, name, position, status, attempts, outputs) VALUES (?, ?, ?, ?, 0, '{}')"
)

# A stage the engine reports without create_run having listed it (rollback actions,
# matrix expansions): it goes after the others, as the reducer adds it.
INSERT_STAGE_LAST = (
    "INSERT INTO stages (run_id, name, position, status, attempts, outputs) "
    "SELECT ?, ?, COALESCE(MAX(position), -1) + 1, ?, 0, '{}' FROM stages WHERE run_id = ?"
)

HEARTBEAT = "UPDATE runs SET heartbeat_at = ? WHERE id = ?"

RUN_EXISTS = "SELECT 1 FROM runs WHERE id = ?"

# -- transitions (writer.py): one event row + the current-state rows it changes --------

# seq is computed inside the write transaction rather than counted in memory, so any
# process may append to a run (a CLI cancel, an approval) without colliding; the
# unique (run_id, seq) index makes MAX a single index lookup.
INSERT_EVENT = (
    "INSERT INTO run_events (run_id, seq, at, kind, payload) "
    "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM run_events WHERE run_id = ?"
)

# A resumed run keeps its first start time and is unfinished again.
RUN_STARTED = (
    "UPDATE runs SET status = ?, started_at = COALESCE(started_at, ?), pid = ?, host = ?, heartbeat_at = ?, "
    "finished_at = NULL, reason = NULL WHERE id = ?"
)

RUN_FINISHED = "UPDATE runs SET status = ?, finished_at = ?, reason = ? WHERE id = ?"

STAGE_STARTED = (
    "UPDATE stages SET status = ?, attempts = ?, reason = NULL, started_at = COALESCE(started_at, ?), "
    "finished_at = NULL WHERE run_id = ? AND name = ?"
)

# Restarting an attempt number that already has a row (a resumed run re-running the
# attempt a crash interrupted) replaces that row instead of failing the transition.
INSERT_ATTEMPT = (
    "INSERT INTO stage_attempts (run_id, stage, attempt, started_at, status, log_path, command, pid) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, stage, attempt) DO UPDATE SET started_at = excluded.started_at, "
    "finished_at = NULL, status = excluded.status, exit_code = NULL, error = NULL, "
    "log_path = excluded.log_path, command = excluded.command, pid = excluded.pid"
)

FINISH_ATTEMPT = (
    "UPDATE stage_attempts SET finished_at = ?, status = ?, exit_code = ?, error = ? "
    "WHERE run_id = ? AND stage = ? AND attempt = ?"
)

# outputs: NULL keeps the previous ones (an attempt that wrote none).
STAGE_FINISHED = (
    "UPDATE stages SET status = ?, finished_at = ?, reason = ?, outputs = COALESCE(?, outputs) "
    "WHERE run_id = ? AND name = ?"
)

# A stage waiting at its gate, or rolled back: a new status and why.
STAGE_STATUS_REASON = "UPDATE stages SET status = ?, reason = ? WHERE run_id = ? AND name = ?"

RUN_WAITING = "UPDATE runs SET status = ? WHERE id = ?"

STAGE_SKIPPED = "UPDATE stages SET status = ?, reason = ?, finished_at = ? WHERE run_id = ? AND name = ?"

# -- reads (reads.py) -----------------------------------------------------------------

SELECT_RUN = (
    "SELECT id, pipeline, version, digest, status, variables, created_at, started_at, finished_at, "
    "reason, pid, host, heartbeat_at, triggered_by, started_by, parent_run_id, cancel_requested_by, event_id "
    "FROM runs WHERE id = ?"
)

SELECT_STAGES = (
    "SELECT name, status, started_at, finished_at, reason, outputs FROM stages "
    "WHERE run_id = ? ORDER BY position, name"
)

SELECT_ATTEMPTS = (
    "SELECT stage, attempt, started_at, finished_at, status, exit_code, error, log_path, pid "
    "FROM stage_attempts WHERE run_id = ? ORDER BY stage, attempt"
)

SELECT_EVENTS = "SELECT kind, payload FROM run_events WHERE run_id = ? ORDER BY seq"

SELECT_DEFINITION = (
    "SELECT v.text, v.digest FROM runs AS r JOIN pipeline_versions AS v "
    "ON v.pipeline = r.pipeline AND v.version = r.version WHERE r.id = ?"
)

# Ids sort as text, so a prefix is a range scan of the primary key ("id LIKE 'x%'"
# would scan the table: LIKE is case-insensitive and cannot use the index).
SELECT_IDS_IN_RANGE = "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"

# -- the registry (registry.py): pipelines, versions, history ---------------------------

SELECT_PIPELINES = (
    "SELECT p.name, p.enabled, p.created_at, p.updated_at, p.deleted_at, "
    "(SELECT MAX(v.version) FROM pipeline_versions AS v WHERE v.pipeline = p.name) AS latest "
    "FROM pipelines AS p ORDER BY p.name"
)

SELECT_PIPELINE = (
    "SELECT p.name, p.enabled, p.created_at, p.updated_at, p.deleted_at, "
    "(SELECT MAX(v.version) FROM pipeline_versions AS v WHERE v.pipeline = p.name) AS latest "
    "FROM pipelines AS p WHERE p.name = ?"
)

SELECT_VERSIONS = (
    "SELECT version, digest, path, created_at FROM pipeline_versions WHERE pipeline = ? ORDER BY version"
)

SELECT_VERSION_TEXT = (
    "SELECT version, digest, path, text, compiled FROM pipeline_versions WHERE pipeline = ? AND version = ?"
)

SELECT_LATEST_VERSION_TEXT = (
    "SELECT version, digest, path, text, compiled FROM pipeline_versions WHERE pipeline = ? "
    "ORDER BY version DESC LIMIT 1"
)

SET_ENABLED = "UPDATE pipelines SET enabled = ?, updated_at = ? WHERE name = ?"

SET_DELETED = "UPDATE pipelines SET deleted_at = ?, updated_at = ? WHERE name = ?"

# Served by ix_runs_pipeline_status without touching the table.
RUN_COUNTS = "SELECT status, COUNT(*) FROM runs WHERE pipeline = ? GROUP BY status"

_SUMMARY = (
    "SELECT id, pipeline, version, status, created_at, started_at, finished_at, reason, "
    "triggered_by, started_by, parent_run_id, pid, host, heartbeat_at FROM runs "
)

LAST_RUN = _SUMMARY + "WHERE pipeline = ? ORDER BY created_at DESC LIMIT 1"

HISTORY = _SUMMARY + "WHERE pipeline = ? ORDER BY created_at DESC LIMIT ?"

# What a run's stages reported using (DESIGN §6 reserved outputs), for history's cost column.
RUN_USAGE = (
    "SELECT SUM(CAST(json_extract(outputs, '$.input_tokens') AS INTEGER)), "
    "SUM(CAST(json_extract(outputs, '$.output_tokens') AS INTEGER)), "
    "SUM(CAST(json_extract(outputs, '$.cost_usd') AS REAL)) FROM stages WHERE run_id = ?"
)

HISTORY_WITH_STATUS = _SUMMARY + "WHERE pipeline = ? AND status = ? ORDER BY created_at DESC LIMIT ?"

ACTIVE_RUNS = _SUMMARY + "WHERE status IN (?, ?, ?) ORDER BY created_at"

# -- control (control.py): cancel, claim, liveness, gc -------------------------------------

REQUEST_CANCEL = (
    "UPDATE runs SET cancel_requested_at = ?, cancel_requested_by = ? "
    "WHERE id = ? AND cancel_requested_at IS NULL"
)

# A resumed run starts without the cancel request that ended it.
CLEAR_CANCEL = "UPDATE runs SET cancel_requested_at = NULL, cancel_requested_by = NULL WHERE id = ?"

SELECT_CANCEL = "SELECT cancel_requested_at, cancel_requested_by FROM runs WHERE id = ?"

# Compare-and-swap on the previous owner: of two processes claiming a run, one wins.
CLAIM_RUN = "UPDATE runs SET pid = ?, host = ?, heartbeat_at = ? WHERE id = ? AND pid IS ? AND host IS ?"

RUNS_OLDER_THAN = "SELECT id FROM runs WHERE created_at < ? AND status IN (?, ?, ?) ORDER BY created_at"

PIPELINES_WITH_RUNS = "SELECT DISTINCT pipeline FROM runs"

# Finished runs of a pipeline past its newest N finished ones (LIMIT -1: no limit, after the offset).
RUNS_BEYOND = "SELECT id FROM runs WHERE pipeline = ? AND status IN (?, ?, ?) ORDER BY created_at DESC LIMIT -1 OFFSET ?"

# stages and run_events go with their run (ON DELETE CASCADE); attempts have no foreign key.
DELETE_ATTEMPTS = "DELETE FROM stage_attempts WHERE run_id = ?"

DELETE_RUN = "DELETE FROM runs WHERE id = ?"

# -- import (a run moved here from a checkpoint) -------------------------------------------

IMPORT_RUN_STATE = "UPDATE runs SET status = ?, started_at = ?, finished_at = ?, reason = ? WHERE id = ?"

IMPORT_STAGE_STATE = (
    "UPDATE stages SET status = ?, attempts = ?, started_at = ?, finished_at = ?, reason = ?, outputs = ? "
    "WHERE run_id = ? AND name = ?"
)

IMPORT_ATTEMPT = (
    "INSERT INTO stage_attempts (run_id, stage, attempt, started_at, finished_at, status, exit_code, error, "
    "log_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

SET_RUN_VERSION = "UPDATE runs SET version = ?, digest = ? WHERE id = ?"

# -- events (DESIGN §9) ------------------------------------------------------------------------

INSERT_EVENT_RECORD = (
    "INSERT INTO events (id, name, payload, branch, labels, changed_files, created_at, emitted_by, dry_run) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_EVENT = (
    "SELECT id, name, payload, branch, labels, changed_files, created_at, emitted_by, dry_run FROM events "
)

SELECT_EVENT_RECORD = _EVENT + "WHERE id = ?"

SELECT_EVENT_RECORDS = _EVENT + "ORDER BY created_at DESC LIMIT ?"

RUNS_OF_EVENT = _SUMMARY + "WHERE event_id = ? ORDER BY created_at"

# -- approvals (approvals.py) --------------------------------------------------------------

INSERT_APPROVAL_REQUEST = (
    "INSERT INTO approval_requests (id, run_id, stage, iteration, status, approvers, eligible, quorum, "
    "deadline, on_timeout, escalate_to, escalated, prevent_self_approval, started_by, evidence, rewind_to, "
    "max_iterations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_APPROVAL = (
    "SELECT a.id, a.run_id, a.stage, a.iteration, a.status, a.approvers, a.eligible, a.quorum, a.deadline, "
    "a.on_timeout, a.escalate_to, a.escalated, a.prevent_self_approval, a.started_by, a.evidence, "
    "a.rewind_to, a.max_iterations, a.created_at, a.decided_at, a.decided_by, a.reason, r.pipeline "
    "FROM approval_requests AS a JOIN runs AS r ON r.id = a.run_id "
)

SELECT_APPROVAL_REQUEST = _APPROVAL + "WHERE a.id = ?"

SELECT_STAGE_APPROVALS = _APPROVAL + "WHERE a.run_id = ? AND a.stage = ? ORDER BY a.created_at"

SELECT_APPROVAL_REQUESTS = _APPROVAL + "ORDER BY a.created_at DESC LIMIT ?"

SELECT_PENDING_APPROVALS = _APPROVAL + "WHERE a.status = ? ORDER BY a.created_at DESC LIMIT ?"

# Only a pending request is decided, once: two deciders racing cannot both win.
DECIDE_APPROVAL = (
    "UPDATE approval_requests SET status = ?, decided_at = ?, decided_by = ?, reason = ? "
    "WHERE id = ? AND status = 'pending'"
)

ESCALATE_APPROVAL = (
    "UPDATE approval_requests SET escalated = TRUE, deadline = ? WHERE id = ? AND status = 'pending'"
)

INSERT_APPROVAL_AUDIT = (
    'INSERT INTO approval_audit (request_id, at, kind, "user", os_user, to_user, comment, data) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

SELECT_APPROVAL_AUDIT = (
    'SELECT at, kind, "user", os_user, to_user, comment, data FROM approval_audit WHERE request_id = ? '
    "ORDER BY at, id"
)

SELECT_APPROVAL_IDS_IN_RANGE = "SELECT id FROM approval_requests WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"

# -- task metrics (metrics.py, DESIGN §8) ----------------------------------------------------

INSERT_TASK_METRIC = (
    "INSERT INTO task_metrics (task_id, task_type, model, executor, duration_seconds, status, created_at, "
    "prompt_variant, skill_version, pipeline, run_id, stage, attempt, input_tokens, output_tokens, cost_usd) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# The filters of every metrics read, seven parameters: since, since, pipeline, pipeline,
# status, status, status2 (NULL keeps every row; "failed" passes failed and timed_out).
# Written so that no index can serve them, on purpose: each read then walks exactly one
# covering index of tables.TaskMetricRecord, in the order its GROUP BY or ORDER BY needs,
# whatever the filters. Its cost is bounded by that index (the widest walk, a million rows,
# takes about 0.2 s), and no plan ever sorts the rows (a sort of a million takes seconds).
# Lower case: a fragment, not a statement that tests/store/test_schema.py could compile.
_metric_filter = (
    "(? IS NULL OR created_at >= ?) AND (? IS NULL OR pipeline = ?) AND (? IS NULL OR status IN (?, ?))"
)

# Additive totals per (task_type, model, status): folded into the overall figures,
# by_task_type and by_model in Python (a few hundred rows). ix_task_metrics_summary.
METRIC_TOTALS = (
    "SELECT task_type, model, status, COUNT(*), TOTAL(duration_seconds), TOTAL(input_tokens), "
    "TOTAL(output_tokens), TOTAL(cost_usd) FROM task_metrics WHERE " + _metric_filter + " "
    "GROUP BY task_type, model, status"
)


def _metric_totals_by(column: str) -> str:
    # Grouping by (column, status) would sort: the index is ordered (column, duration), so the
    # statuses are counted by expression instead; parameters: completed, failed, timed_out, filters.
    return (
        f"SELECT {column}, COUNT(*), TOTAL(status = ?), TOTAL(status = ?), TOTAL(status = ?), "
        "TOTAL(duration_seconds), TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cost_usd) "
        f"FROM task_metrics WHERE {_metric_filter} GROUP BY {column}"
    )


METRIC_TOTALS_BY_EXECUTOR = _metric_totals_by("executor")
METRIC_TOTALS_BY_PIPELINE = _metric_totals_by("pipeline")
METRIC_TOTALS_BY_STAGE = _metric_totals_by("stage")
METRIC_TOTALS_BY_PROMPT_VARIANT = _metric_totals_by("prompt_variant")


def _metric_duration_at(column: str | None, order: str) -> str:
    # The duration at an offset in the filtered rows (of one group: `column IS ?` matches NULL
    # too) read from the (column, duration_seconds, ...) index: no sort, the offset walks the
    # index. Reading high ranks backwards (DESC) walks only n - rank entries.
    group = f"{column} IS ? AND " if column else ""
    return (
        f"SELECT duration_seconds FROM task_metrics WHERE {group}{_metric_filter} "
        f"ORDER BY duration_seconds {order} LIMIT 1 OFFSET ?"
    )


METRIC_DURATION_ASC = _metric_duration_at(None, "ASC")
METRIC_DURATION_DESC = _metric_duration_at(None, "DESC")
METRIC_DURATION_BY_TASK_TYPE_ASC = _metric_duration_at("task_type", "ASC")
METRIC_DURATION_BY_TASK_TYPE_DESC = _metric_duration_at("task_type", "DESC")
METRIC_DURATION_BY_MODEL_ASC = _metric_duration_at("model", "ASC")
METRIC_DURATION_BY_MODEL_DESC = _metric_duration_at("model", "DESC")
METRIC_DURATION_BY_EXECUTOR_ASC = _metric_duration_at("executor", "ASC")
METRIC_DURATION_BY_EXECUTOR_DESC = _metric_duration_at("executor", "DESC")
METRIC_DURATION_BY_PIPELINE_ASC = _metric_duration_at("pipeline", "ASC")
METRIC_DURATION_BY_PIPELINE_DESC = _metric_duration_at("pipeline", "DESC")
METRIC_DURATION_BY_STAGE_ASC = _metric_duration_at("stage", "ASC")
METRIC_DURATION_BY_STAGE_DESC = _metric_duration_at("stage", "DESC")
METRIC_DURATION_BY_PROMPT_VARIANT_ASC = _metric_duration_at("prompt_variant", "ASC")
METRIC_DURATION_BY_PROMPT_VARIANT_DESC = _metric_duration_at("prompt_variant", "DESC")

# One day of the daily chart: [start, end) is a range of ix_task_metrics_created_at.
# Parameters: completed, failed, timed_out, start, end, then the filters.
METRIC_DAY = (
    "SELECT COUNT(*), TOTAL(status = ?), TOTAL(status = ?), TOTAL(status = ?) FROM task_metrics "
    "WHERE created_at >= ? AND created_at < ? AND " + _metric_filter
)

# -- reported pipelines (reported.py, DESIGN §7): agents' self-reports ------------------------

INSERT_REPORTED_PIPELINE = (
    "INSERT INTO reported_pipelines (id, pipeline_type, title, sprint, status, created_at, updated_at, "
    "created_by, run_id, stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# A step goes after the others: the defaults of its type in order, then steps as jobs name them.
INSERT_REPORTED_STEP = (
    "INSERT INTO reported_steps (pipeline_id, name, position, status) "
    "SELECT ?, ?, COALESCE(MAX(position), -1) + 1, ? FROM reported_steps WHERE pipeline_id = ?"
)

REPORTED_STEP_EXISTS = "SELECT 1 FROM reported_steps WHERE pipeline_id = ? AND name = ?"

INSERT_REPORTED_JOB = (
    "INSERT INTO reported_jobs (id, pipeline_id, step, name, description, status, created_at, started_at, "
    "finished_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# started_at is set by the first report of a started status, finished_at by a terminal one
# (NULL again if the job is reopened); summary: NULL keeps the previous one.
UPDATE_REPORTED_JOB = (
    "UPDATE reported_jobs SET status = ?, summary = COALESCE(?, summary), "
    "started_at = COALESCE(started_at, ?), finished_at = ?, updated_at = ? WHERE id = ?"
)

SET_REPORTED_JOB_LOG = "UPDATE reported_jobs SET log_path = ?, updated_at = ? WHERE id = ?"

# Jobs still open when their pipeline finishes are closed with it.
CLOSE_REPORTED_JOBS = (
    "UPDATE reported_jobs SET status = ?, started_at = COALESCE(started_at, ?), finished_at = ?, "
    "updated_at = ? WHERE pipeline_id = ? AND status IN (?, ?)"
)

REPORTED_JOB_STATUSES = "SELECT status FROM reported_jobs WHERE pipeline_id = ? AND step = ?"

SET_REPORTED_STEP_STATUS = "UPDATE reported_steps SET status = ? WHERE pipeline_id = ? AND name = ?"

REPORTED_STEP_STATUSES = "SELECT status FROM reported_steps WHERE pipeline_id = ? ORDER BY position"

TOUCH_REPORTED_PIPELINE = "UPDATE reported_pipelines SET status = ?, updated_at = ? WHERE id = ?"

FINISH_REPORTED_PIPELINE = (
    "UPDATE reported_pipelines SET status = ?, finished_at = ?, updated_at = ?, "
    "summary = COALESCE(?, summary) WHERE id = ? AND finished_at IS NULL"
)

SELECT_REPORTED_PIPELINE = (
    "SELECT p.id, p.pipeline_type, p.title, p.sprint, p.status, p.created_at, p.updated_at, p.finished_at, "
    "p.summary, p.created_by, p.run_id, p.stage, p.logs_cleaned_at, "
    "(SELECT COUNT(*) FROM reported_jobs AS j WHERE j.pipeline_id = p.id) "
    "FROM reported_pipelines AS p WHERE p.id = ?"
)

SELECT_REPORTED_STEPS = (
    "SELECT name, position, status FROM reported_steps WHERE pipeline_id = ? ORDER BY position"
)

SELECT_REPORTED_JOBS = (
    "SELECT id, pipeline_id, step, name, status, created_at, updated_at, description, summary, started_at, "
    "finished_at, log_path FROM reported_jobs WHERE pipeline_id = ? ORDER BY created_at, id"
)

SELECT_REPORTED_JOB = (
    "SELECT id, pipeline_id, step, name, status, created_at, updated_at, description, summary, started_at, "
    "finished_at, log_path FROM reported_jobs WHERE id = ?"
)

# The filters of `report list` / list_pipelines, ten parameters: status, status, type, type,
# sprint, sprint, stale (1 or NULL), running, stale-before; then limit and offset. NULL keeps
# every row. Stale is decided here at read time, so pages of stale pipelines stay whole.
SELECT_REPORTED_PIPELINES = (
    "SELECT p.id, p.pipeline_type, p.title, p.sprint, p.status, p.created_at, p.updated_at, p.finished_at, "
    "p.summary, p.created_by, p.run_id, p.stage, p.logs_cleaned_at, "
    "(SELECT COUNT(*) FROM reported_jobs AS j WHERE j.pipeline_id = p.id) "
    "FROM reported_pipelines AS p WHERE (? IS NULL OR p.status = ?) AND (? IS NULL OR p.pipeline_type = ?) "
    "AND (? IS NULL OR p.sprint = ?) "
    "AND (? IS NULL OR (p.status = ? AND p.finished_at IS NULL AND p.updated_at < ?)) "
    "ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?"
)

COUNT_REPORTED_PIPELINES = (
    "SELECT COUNT(*) FROM reported_pipelines AS p WHERE (? IS NULL OR p.status = ?) "
    "AND (? IS NULL OR p.pipeline_type = ?) AND (? IS NULL OR p.sprint = ?) "
    "AND (? IS NULL OR (p.status = ? AND p.finished_at IS NULL AND p.updated_at < ?))"
)

# The unfinished pipelines an agent may be reporting into (newest first): in one run's stage,
# or (run NULL) anywhere.
OPEN_REPORTED_PIPELINES = (
    "SELECT id FROM reported_pipelines WHERE finished_at IS NULL "
    "AND (? IS NULL OR (run_id = ? AND stage IS ?)) ORDER BY created_at DESC LIMIT 10"
)

REPORTED_PIPELINE_IDS_IN_RANGE = (
    "SELECT id FROM reported_pipelines WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
)

REPORTED_JOB_IDS_IN_RANGE = "SELECT id FROM reported_jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"

# `report clean --sprint S`: finished pipelines whose logs are still there, and those still open.
REPORTED_SPRINT_PIPELINES = (
    "SELECT id, finished_at FROM reported_pipelines WHERE sprint = ? AND logs_cleaned_at IS NULL "
    "ORDER BY created_at"
)

SET_REPORTED_LOGS_CLEANED = "UPDATE reported_pipelines SET logs_cleaned_at = ? WHERE id = ?"

# -- freshness (services/freshness.py): stale runs and overdue stages, judged at read time ---

# When a run last changed: its newest event (ix_run_events_run_seq, one row).
RUN_LAST_EVENT_AT = "SELECT at FROM run_events WHERE run_id = ? ORDER BY seq DESC LIMIT 1"

# A stage's own past durations (completed attempts of that pipeline's stage), newest first:
# ix_task_metrics_stage_duration narrows to the stage, the pipeline is checked in the index.
STAGE_PAST_DURATIONS = (
    "SELECT duration_seconds FROM task_metrics WHERE stage = ? AND pipeline = ? AND status = ? "
    "ORDER BY created_at DESC LIMIT ?"
)


# -- web dashboard and API (orchestrate serve, issue 12; store/live.py) ------------------------

# The live stream tails run_events by id, a global order (tables.RunEventRecord); one run
# when the second and third parameters name it. The primary key serves `id > ?` in order.
RUN_EVENTS_AFTER = (
    "SELECT id, run_id, at, kind, payload FROM run_events WHERE id > ? AND (? IS NULL OR run_id = ?) "
    "ORDER BY id LIMIT ?"
)

LAST_RUN_EVENT_ID = "SELECT COALESCE(MAX(id), 0) FROM run_events"

# The metrics page's daily percentiles: the duration at an offset among one day's filtered rows.
# Parameters: start, end, the seven of _metric_filter, the offset. Unlike the METRIC_* reads
# (tests/metrics/test_store.py), this one sorts, on purpose: one day's rows, found by
# ix_task_metrics_created_at, is a small sort, where walking a duration index would scan
# every row of every day.
DAY_DURATION_AT_OFFSET = (
    "SELECT duration_seconds FROM task_metrics WHERE created_at >= ? AND created_at < ? AND "
    + _metric_filter
    + " ORDER BY duration_seconds LIMIT 1 OFFSET ?"
)


# -- the worker and schedules (issue 11; store/scheduling.py) ---------------------------------

# A cron trigger seen for the first time: its missed slots count from now on.
INSERT_SCHEDULE = (
    "INSERT INTO schedules (pipeline, trigger, first_seen_at) VALUES (?, ?, ?) "
    "ON CONFLICT (pipeline, trigger) DO NOTHING"
)

SELECT_SCHEDULE_SEEN = "SELECT first_seen_at FROM schedules WHERE pipeline = ? AND trigger = ?"

# The newest slot that fired (uq_schedule_slots_slot serves it): later slots are due.
LAST_SCHEDULE_SLOT = "SELECT MAX(slot_at) FROM schedule_slots WHERE pipeline = ? AND trigger = ?"

# Claiming a slot: of two workers (or a worker and `schedule tick`), the unique key lets one insert.
CLAIM_SCHEDULE_SLOT = (
    "INSERT INTO schedule_slots (pipeline, trigger, slot_at, claimed_at, claimed_by, run_id, note) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pipeline, trigger, slot_at) DO NOTHING"
)

SELECT_SCHEDULE_SLOTS = (
    "SELECT pipeline, trigger, slot_at, claimed_at, claimed_by, run_id, note FROM schedule_slots "
    "WHERE pipeline = ? ORDER BY slot_at DESC LIMIT ?"
)

# The queue, oldest first.
QUEUED_RUNS = _SUMMARY + "WHERE status = ? ORDER BY created_at, id"

# A queued run leaves the queue once (compare-and-swap on its status); heartbeat_at restarts the
# time a detached process has to claim it (services.control.orphaned).
DEQUEUE_RUN = "UPDATE runs SET status = ?, heartbeat_at = ? WHERE id = ? AND status = ?"

SET_RUN_STATUS = "UPDATE runs SET status = ? WHERE id = ? AND status = ?"

# Concurrency: the other runs of a pipeline that hold a slot (pending, running, waiting), oldest first.
ACTIVE_RUNS_OF_PIPELINE = (
    "SELECT id FROM runs WHERE pipeline = ? AND id != ? AND status IN (?, ?, ?) ORDER BY created_at, id"
)

# Runs stopped at a gate whose every approval request is decided: they can go on.
DECIDED_WAITING_RUNS = (
    _SUMMARY + "WHERE status = ? AND NOT EXISTS (SELECT 1 FROM approval_requests a "
    "WHERE a.run_id = runs.id AND a.status = ?) ORDER BY created_at"
)

INSERT_WORKER_LAUNCH = (
    "INSERT INTO worker_launches (run_id, reason, launched_at, worker, child_pid) VALUES (?, ?, ?, ?, ?)"
)

MARK_LAUNCH_INTERRUPTED = (
    "UPDATE worker_launches SET interrupted_at = ? WHERE run_id = ? AND worker = ? AND interrupted_at IS NULL"
)

INTERRUPTED_LAUNCHES = (
    "SELECT DISTINCT run_id FROM worker_launches WHERE interrupted_at IS NOT NULL AND resumed_at IS NULL"
)

MARK_LAUNCH_RESUMED = (
    "UPDATE worker_launches SET resumed_at = ? WHERE run_id = ? AND interrupted_at IS NOT NULL "
    "AND resumed_at IS NULL"
)

# GET /metrics: runs by pipeline and status; finished stages' durations by pipeline.
RUNS_BY_PIPELINE_STATUS = "SELECT pipeline, status, COUNT(*) FROM runs GROUP BY pipeline, status"

STAGE_DURATIONS_BY_PIPELINE = (
    "SELECT r.pipeline, s.finished_at - s.started_at FROM stages s JOIN runs r ON r.id = s.run_id "
    "WHERE s.finished_at IS NOT NULL AND s.started_at IS NOT NULL"
)

COUNT_RUNS_WITH_STATUS = "SELECT COUNT(*) FROM runs WHERE status = ?"

COUNT_APPROVALS_WITH_STATUS = "SELECT COUNT(*) FROM approval_requests WHERE status = ?"


# -- experiments and budgets (issue 10; store/experiments.py) ---------------------------------

# A run's variant of one experiment is assigned once: a second assignment (a resumed or
# re-executed run) keeps the first.
INSERT_RUN_VARIANT = (
    "INSERT OR IGNORE INTO run_variants (run_id, experiment, variant, assigned_by, assigned_at) "
    "VALUES (?, ?, ?, ?, ?)"
)

RUN_VARIANTS = (
    "SELECT experiment, variant, assigned_by FROM run_variants WHERE run_id = ? ORDER BY experiment"
)

# The runs of one experiment (optionally of one pipeline), with what `experiment report` compares.
EXPERIMENT_RUNS = (
    "SELECT v.variant, r.id, r.pipeline, r.status, r.started_at, r.finished_at "
    "FROM run_variants v JOIN runs r ON r.id = v.run_id "
    "WHERE v.experiment = ? AND (? IS NULL OR r.pipeline = ?) ORDER BY r.id"
)

# Tokens and cost per run of one experiment, summed over every attempt's task-metric row.
EXPERIMENT_RUN_USAGE = (
    "SELECT m.run_id, SUM(COALESCE(m.input_tokens, 0) + COALESCE(m.output_tokens, 0)), SUM(m.cost_usd), "
    "COUNT(m.input_tokens) + COUNT(m.output_tokens), COUNT(m.cost_usd) "
    "FROM task_metrics m JOIN run_variants v ON v.run_id = m.run_id "
    "WHERE v.experiment = ? GROUP BY m.run_id"
)

# `experiment list`: runs per pipeline, experiment and variant, with how many succeeded.
EXPERIMENT_SUMMARY = (
    "SELECT r.pipeline, v.experiment, v.variant, COUNT(*), SUM(r.status = ?), MAX(r.created_at) "
    "FROM run_variants v JOIN runs r ON r.id = v.run_id "
    "GROUP BY r.pipeline, v.experiment, v.variant ORDER BY r.pipeline, v.experiment, v.variant"
)

# A stage's past usage for its budget forecast: the newest attempts of that pipeline's stage with
# the configured model (task metrics record it; NULL: any model) that reported any. ix_task_metrics_summary leads with
# (task_type, model) and carries the rest.
STAGE_USAGE_HISTORY = (
    "SELECT cost_usd, input_tokens, output_tokens FROM task_metrics "
    "WHERE task_type = ? AND (? IS NULL OR model IS ?) AND pipeline = ? "
    "AND (cost_usd IS NOT NULL OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL) "
    "ORDER BY created_at DESC LIMIT ?"
)

# The budget checks of a run, oldest first (pipeline status shows the latest per scope).
RUN_BUDGET_EVENTS = "SELECT payload FROM run_events WHERE run_id = ? AND kind = 'budget_checked' ORDER BY seq"

# -- goals and review (store/review.py, issue 10): goals, their links, review actions ----------

INSERT_GOAL = (
    "INSERT INTO goals (name, metric, target, created_at, since, deadline, created_by) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
GOAL_EXISTS = "SELECT 1 FROM goals WHERE name = ?"
SELECT_GOALS = "SELECT name, metric, target, created_at, since, deadline, created_by FROM goals ORDER BY created_at, name"
DELETE_GOAL_LINKS = "DELETE FROM goal_links WHERE goal = ?"
DELETE_GOAL = "DELETE FROM goals WHERE name = ?"
INSERT_GOAL_LINK = "INSERT OR IGNORE INTO goal_links (goal, kind, value, created_at) VALUES (?, ?, ?, ?)"
DELETE_GOAL_LINK = "DELETE FROM goal_links WHERE goal = ? AND kind = ? AND value = ?"
SELECT_GOAL_LINKS = "SELECT goal, kind, value FROM goal_links ORDER BY goal, created_at, kind, value"

# Finished runs (two statuses) in [start, end), newest first: what goals are computed from.
GOAL_RUNS = (
    "SELECT id, pipeline, status, started_at, finished_at FROM runs "
    "WHERE status IN (?, ?) AND finished_at >= ? AND finished_at < ? ORDER BY finished_at DESC"
)

# Active runs (three statuses) with the time of their last transition (NULL: none yet).
REVIEW_ACTIVE_RUNS = (
    "SELECT r.id, r.pipeline, r.status, r.variables, r.created_at, r.pid, r.host, r.heartbeat_at, "
    "(SELECT MAX(e.at) FROM run_events e WHERE e.run_id = r.id) "
    "FROM runs r WHERE r.status IN (?, ?, ?, ?) ORDER BY r.created_at"
)

# The stages of each pipeline's newest finished runs: statuses (two), created since, runs per pipeline.
REVIEW_RECENT_STAGES = (
    "SELECT x.pipeline, x.id, s.name, s.status FROM ("
    "SELECT id, pipeline, created_at, ROW_NUMBER() OVER (PARTITION BY pipeline ORDER BY created_at DESC) AS n "
    "FROM runs WHERE status IN (?, ?) AND created_at >= ?) AS x "
    "JOIN stages s ON s.run_id = x.id WHERE x.n <= ? ORDER BY x.pipeline, x.created_at DESC, s.position"
)

# The newest attempts of each pipeline's stages from task metrics: since, statuses (three), per stage.
REVIEW_RECENT_ATTEMPTS = (
    "SELECT pipeline, stage, run_id, status, duration_seconds FROM ("
    "SELECT pipeline, stage, run_id, status, duration_seconds, created_at, "
    "ROW_NUMBER() OVER (PARTITION BY pipeline, stage ORDER BY created_at DESC) AS n FROM task_metrics "
    "WHERE created_at >= ? AND pipeline IS NOT NULL AND stage IS NOT NULL AND status IN (?, ?, ?)) AS x "
    "WHERE n <= ? ORDER BY pipeline, stage, created_at DESC"
)

# Each run's cost (runs that reported one), per pipeline, newest first.
REVIEW_RUN_COSTS = (
    "SELECT run_id, pipeline, SUM(cost_usd) FROM task_metrics "
    "WHERE created_at >= ? AND run_id IS NOT NULL AND pipeline IS NOT NULL AND cost_usd IS NOT NULL "
    "GROUP BY run_id, pipeline ORDER BY pipeline, MAX(created_at) DESC"
)

# How long decided approvals (three statuses) waited, by pipeline, since a time.
REVIEW_DECISION_TIMES = (
    "SELECT r.pipeline, a.decided_at - a.created_at FROM approval_requests a JOIN runs r ON r.id = a.run_id "
    "WHERE a.status IN (?, ?, ?) AND a.decided_at IS NOT NULL AND a.created_at >= ?"
)
REVIEW_PENDING_APPROVALS = (
    "SELECT a.id, a.run_id, a.stage, r.pipeline, a.created_at FROM approval_requests a "
    "JOIN runs r ON r.id = a.run_id WHERE a.status = ? ORDER BY a.created_at"
)

# Auto-scheduling: the claim of a fingerprint still cooling down, then the action row.
REVIEW_ACTION_COOLING = (
    "SELECT id, created_at, cooldown_until FROM review_actions "
    "WHERE fingerprint = ? AND cooldown_until > ? ORDER BY created_at DESC LIMIT 1"
)
INSERT_REVIEW_ACTION = (
    "INSERT INTO review_actions (fingerprint, kind, subject, pipeline, status, created_at, cooldown_until, "
    "by, finding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SET_REVIEW_ACTION_RESULT = (
    "UPDATE review_actions SET status = ?, run_id = ?, event_id = ?, error = ? WHERE id = ?"
)
SELECT_REVIEW_ACTIONS = (
    "SELECT id, fingerprint, kind, subject, pipeline, status, created_at, cooldown_until, run_id, event_id, "
    "by, error, finding FROM review_actions ORDER BY id DESC LIMIT ?"
)
SELECT_REVIEW_ACTION = (
    "SELECT id, fingerprint, kind, subject, pipeline, status, created_at, cooldown_until, run_id, event_id, "
    "by, error, finding FROM review_actions WHERE id = ?"
)

# A new run queues behind the queued runs of its pipeline (first in, first out).
QUEUED_OF_PIPELINE = "SELECT COUNT(*) FROM runs WHERE pipeline = ? AND id != ? AND status = ?"

# The newest approval request of a run: a run continued at the same request again is stuck.
LAST_APPROVAL_OF_RUN = "SELECT MAX(id) FROM approval_requests WHERE run_id = ?"

# -- many workers on one store (issue 13; store/scheduling.py) --------------------------------
# Claims run in ``db.claim()``; the store appends its ROW_LOCK to these SELECTs (PostgreSQL:
# FOR UPDATE SKIP LOCKED), so workers claiming at once take different rows.

# The oldest queued runs, to take off the queue (then DEQUEUE_RUN on each, a compare-and-swap).
CLAIM_QUEUED_RUNS = "SELECT id, pipeline, version FROM runs WHERE status = ? ORDER BY created_at, id LIMIT ?"

# A run a worker is about to take over (orphaned, or decided at its gates): its owner as it is now.
LOCK_RUN_OWNER = "SELECT pid, host, heartbeat_at, status FROM runs WHERE id = ?"

# When a worker last launched the run: a launch since its last heartbeat, within DEAD_AFTER, holds it.
LAST_LAUNCH_OF_RUN = "SELECT MAX(launched_at) FROM worker_launches WHERE run_id = ?"

# The launch row a takeover wrote, completed once the child process exists.
SET_LAUNCH_CHILD = "UPDATE worker_launches SET child_pid = ? WHERE id = ?"
