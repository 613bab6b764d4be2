"""The canonical schema: SQLModel tables, the only definition of what the store holds.

``db.create_schema`` compiles these classes to DDL, and read/query code may use them
through SQLModel sessions. The run's hot path (``writer.py``, ``sql.py``) speaks plain
SQL to the same tables through ``sqlite3`` so that starting a run never pays for
importing SQLModel; ``tests/store/test_schema.py`` proves that SQL names only tables
and columns defined here.

Table and column names are stored forever: add, never rename. A change here means a
new alembic revision in ``store/migrations/versions`` and a new ``migrations.HEAD``
(``tests/store/test_migrations.py`` fails until the revisions build this schema).

JSON values (``variables``, ``outputs``, ``payload``, ``compiled``) are TEXT holding
JSON, not SQLAlchemy's JSON type: that type gets NUMERIC affinity in SQLite, and the
raw-SQL path reads and writes the text itself anyway. Times are float epoch seconds.
"""

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint, text, true
from sqlmodel import Field, SQLModel


class PipelineRecord(SQLModel, table=True):
    __tablename__ = "pipelines"

    name: str = Field(primary_key=True)
    enabled: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    created_at: float
    updated_at: float
    # `pipeline delete` removes the file and sets this; the history stays readable.
    deleted_at: float | None = None


class PipelineVersionRecord(SQLModel, table=True):
    """One distinct definition text of a pipeline; runs point at the one they started with."""

    __tablename__ = "pipeline_versions"
    __table_args__ = (
        UniqueConstraint("pipeline", "digest", name="uq_pipeline_versions_digest"),
        UniqueConstraint("pipeline", "version", name="uq_pipeline_versions_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pipeline: str = Field(foreign_key="pipelines.name")
    version: int  # 1..n per pipeline, in registration order
    digest: str  # sha256 hex of ``text``
    path: str  # where the file was when this version was registered
    text: str  # the exact definition text
    compiled: str  # JSON of the validated model, so a known digest skips validation
    created_at: float


class RunRecord(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["pipeline", "version"],
            ["pipeline_versions.pipeline", "pipeline_versions.version"],
            name="fk_runs_pipeline_version",
        ),
        Index("ix_runs_pipeline_created_at", "pipeline", "created_at"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_pipeline_status", "pipeline", "status"),
        Index("ix_runs_parent_run_id", "parent_run_id"),
        Index("ix_runs_event_id", "event_id"),
    )

    id: str = Field(primary_key=True)  # domain.ids.new_run_id: sortable by creation time
    pipeline: str = Field(foreign_key="pipelines.name")
    version: int
    digest: str
    status: str  # domain.status.RunStatus
    variables: str = Field(default="{}", sa_column_kwargs={"server_default": "{}"})  # JSON object
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    pid: int | None = None  # of the process running it, to tell a live run from a dead one
    host: str | None = None
    heartbeat_at: float | None = None
    # what started the run: "manual", "cron", "event:NAME", ... (not "trigger": an SQL keyword)
    triggered_by: str | None = None
    parent_run_id: str | None = Field(default=None, foreign_key="runs.id", ondelete="SET NULL")
    cancel_requested_at: float | None = None
    cancel_requested_by: str | None = None
    started_by: str | None = None  # the user who started it (ORCHESTRATE_USER, else the OS user)
    event_id: str | None = Field(
        default=None, foreign_key="events.id", ondelete="SET NULL"
    )  # what triggered it


class StageRecord(SQLModel, table=True):
    """The current state of one stage of a run (its attempts are rows of ``stage_attempts``)."""

    __tablename__ = "stages"
    __table_args__ = (
        Index("ix_stages_run_position", "run_id", "position"),
        # Clustered on the primary key: one b-tree to write per transition, not two.
        {"sqlite_with_rowid": False},
    )

    run_id: str = Field(primary_key=True, foreign_key="runs.id", ondelete="CASCADE")
    name: str = Field(primary_key=True)
    position: int  # file order; stages added during the run (rollback, matrix) come after
    status: str  # domain.status.StageStatus
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    started_at: float | None = None  # of the first attempt
    finished_at: float | None = None
    reason: str | None = None  # why skipped, or the last error
    # JSON object: the outputs of the last attempt that produced any
    outputs: str = Field(default="{}", sa_column_kwargs={"server_default": "{}"})


class StageAttemptRecord(SQLModel, table=True):
    __tablename__ = "stage_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "stage"],
            ["stages.run_id", "stages.name"],
            name="fk_stage_attempts_stage",
            ondelete="CASCADE",
        ),
        {"sqlite_with_rowid": False},
    )

    run_id: str = Field(primary_key=True)
    stage: str = Field(primary_key=True)
    attempt: int = Field(primary_key=True)  # 1..n
    started_at: float
    finished_at: float | None = None
    status: str  # domain.status.StageStatus
    exit_code: int | None = None
    error: str | None = None
    log_path: str = ""
    command: str | None = None  # as run, after interpolation
    pid: int | None = None  # its process group, to stop leftovers when a crashed run resumes


class RunEventRecord(SQLModel, table=True):
    """Append-only history of a run: one row per transition, ``seq`` 1..n per run.

    Nothing updates or deletes these rows, except garbage collection of whole runs.
    ``id`` is SQLite's rowid: it grows with every insert, giving a global order for
    tailing the table. Not AUTOINCREMENT, which costs ~6 µs a transition (a write to
    sqlite_sequence); the only difference is that deleting the newest rows lets
    their ids be reused, and gc deletes old runs.
    """

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_seq", "run_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE")
    seq: int
    at: float
    kind: str  # domain.events.kind_of
    payload: str  # JSON of domain.events.to_record


class TriggerEventRecord(SQLModel, table=True):
    """An event emitted with `orchestrate event emit` (DESIGN §9), kept with what it started."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_created_at", "created_at"),)

    id: str = Field(primary_key=True)  # domain.ids.new_run_id: sortable by time
    name: str
    payload: str  # JSON object
    branch: str | None = None
    labels: str = Field(default="[]", sa_column_kwargs={"server_default": "[]"})  # JSON list
    changed_files: str | None = None  # JSON list; NULL: not known
    created_at: float
    emitted_by: str | None = None
    dry_run: bool = False


class ApprovalRequestRecord(SQLModel, table=True):
    """An approval gate opened by a run (DESIGN §4). Decisions come from the audit rows."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_run_stage", "run_id", "stage", "iteration"),
        Index("ix_approval_requests_status", "status"),
    )

    id: str = Field(primary_key=True)  # domain.ids.new_run_id: short, sortable
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE")
    stage: str
    iteration: int  # 1, then 2.. after each push-back
    status: str  # pending | approved | rejected | timed_out | pushed_back | invalidated
    approvers: str  # JSON list of users and groups, as written
    eligible: str  # JSON list of users (groups expanded)
    quorum: int
    deadline: float | None = None
    on_timeout: str = "reject"
    escalate_to: str = "[]"  # JSON list
    escalated: bool = False
    prevent_self_approval: bool = False
    started_by: str | None = None  # who started the run
    evidence: str | None = None  # JSON {spec: digest}
    rewind_to: str | None = None  # default target of a push-back
    max_iterations: int | None = None
    created_at: float
    decided_at: float | None = None
    decided_by: str | None = None
    reason: str | None = None  # rejection reason, push-back feedback, timeout note


class ApprovalAuditRecord(SQLModel, table=True):
    """Append-only: every request, vote, comment, delegation, refusal, timeout. Never updated."""

    __tablename__ = "approval_audit"
    __table_args__ = (Index("ix_approval_audit_request", "request_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="approval_requests.id", ondelete="CASCADE")
    at: float
    kind: str  # requested | approved | rejected | delegated | refused | timed_out | escalated | pushed_back | invalidated | notified
    user: str | None = None  # as claimed (--as, ORCHESTRATE_USER, OS user)
    os_user: str | None = None  # the OS account that ran the command
    to_user: str | None = None  # delegate target
    comment: str | None = None
    data: str = "{}"  # JSON details


class TaskMetricRecord(SQLModel, table=True):
    """One finished stage attempt, or one agent job reported with `metrics record` (DESIGN §8).

    Not tied to ``runs`` by a foreign key: the metrics outlive the runs gc deletes.

    The indexes serve ``orchestrate metrics`` over a million rows (bench/metrics.py): each
    read walks one of them and never the table, and never sorts (see ``sql._metric_filter``).
    Every index carries the filter columns (created_at, status, pipeline), so ``--since``,
    ``--pipeline`` and ``--status`` are checked inside the index. ``summary`` gives the
    totals per (task_type, model, status) in one pass; each ``*_duration`` index gives the
    percentiles of its group by offset and, for the other ``--by`` columns, with the sums it
    carries, their totals; ``created_at`` gives the daily counts.
    """

    __tablename__ = "task_metrics"
    __table_args__ = (
        Index(
            "ix_task_metrics_summary",
            "task_type",
            "model",
            "status",
            "created_at",
            "pipeline",
            "duration_seconds",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ),
        Index("ix_task_metrics_duration", "duration_seconds", "created_at", "status", "pipeline"),
        Index(
            "ix_task_metrics_task_type_duration",
            "task_type",
            "duration_seconds",
            "created_at",
            "status",
            "pipeline",
        ),
        Index(
            "ix_task_metrics_model_duration", "model", "duration_seconds", "created_at", "status", "pipeline"
        ),
        *[
            Index(
                f"ix_task_metrics_{column}_duration",
                column,
                "duration_seconds",
                "created_at",
                "status",
                *([] if column == "pipeline" else ["pipeline"]),
                "input_tokens",
                "output_tokens",
                "cost_usd",
            )
            for column in ("executor", "pipeline", "stage", "prompt_variant")
        ],
        Index("ix_task_metrics_created_at", "created_at", "status", "pipeline"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: str  # "RUN/STAGE/ATTEMPT" for a stage attempt; free for `metrics record`
    task_type: str
    model: str | None = None
    executor: str | None = None
    duration_seconds: float
    status: str  # domain.metrics.MetricStatus
    created_at: float
    prompt_variant: str | None = None
    skill_version: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    stage: str | None = None
    attempt: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class ReportedPipelineRecord(SQLModel, table=True):
    """A pipeline an agent reports about itself (DESIGN §7): observed, never executed."""

    __tablename__ = "reported_pipelines"
    __table_args__ = (
        Index("ix_reported_pipelines_created_at", "created_at"),
        Index("ix_reported_pipelines_status", "status", "created_at"),
        Index("ix_reported_pipelines_sprint", "sprint", "created_at"),
        Index("ix_reported_pipelines_run", "run_id", "stage"),
    )

    id: str = Field(primary_key=True)  # domain.ids.new_run_id
    pipeline_type: str  # domain.observe.PipelineType
    title: str
    sprint: str | None = None
    status: str  # domain.observe.ReportStatus
    created_at: float  # also when it started: an agent creates it as its work begins
    updated_at: float  # of the last report about it: stale when this is old (read time)
    finished_at: float | None = None
    summary: str | None = None
    created_by: str | None = None
    # The executed run and stage whose agent reported it (ORCHESTRATE_RUN_ID/STAGE). No foreign
    # key: the report outlives the run that gc deletes, and may name a run of another store.
    run_id: str | None = None
    stage: str | None = None
    logs_cleaned_at: float | None = None  # `report clean` deleted its job logs then


class ReportedStepRecord(SQLModel, table=True):
    """A step of a reported pipeline; its status is the aggregate of its jobs' (times derive from them)."""

    __tablename__ = "reported_steps"
    __table_args__ = (
        Index("ix_reported_steps_position", "pipeline_id", "position"),
        {"sqlite_with_rowid": False},
    )

    pipeline_id: str = Field(primary_key=True, foreign_key="reported_pipelines.id", ondelete="CASCADE")
    name: str = Field(primary_key=True)
    position: int
    status: str  # domain.observe.ReportStatus


class ReportedJobRecord(SQLModel, table=True):
    """A job an agent reported in a step; its log is a markdown file under logs/."""

    __tablename__ = "reported_jobs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["pipeline_id", "step"],
            ["reported_steps.pipeline_id", "reported_steps.name"],
            name="fk_reported_jobs_step",
            ondelete="CASCADE",
        ),
        Index("ix_reported_jobs_step", "pipeline_id", "step", "created_at"),
    )

    id: str = Field(primary_key=True)  # domain.ids.new_run_id
    pipeline_id: str
    step: str
    name: str
    description: str | None = None
    status: str  # domain.observe.ReportStatus
    summary: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float
    log_path: str | None = None  # relative to the workspace, set by the first append


class RunVariantRecord(SQLModel, table=True):
    """The variant a run got for one experiment (DESIGN §8; issue 10): assigned once, never changed."""

    __tablename__ = "run_variants"
    __table_args__ = (
        Index("ix_run_variants_experiment", "experiment", "variant"),
        {"sqlite_with_rowid": False},
    )

    run_id: str = Field(primary_key=True, foreign_key="runs.id", ondelete="CASCADE")
    experiment: str = Field(primary_key=True)
    variant: str
    assigned_by: str  # hash | random | forced (domain.experiments)
    assigned_at: float


class ScheduleRecord(SQLModel, table=True):
    """A cron trigger the worker has seen (issue 11): missed slots count from ``first_seen_at``.

    ``trigger`` is the expression and its time zone ("0 */6 * * * @Europe/Paris"): editing
    the cron line makes a new schedule, which fires from its next slot on.
    """

    __tablename__ = "schedules"
    __table_args__ = ({"sqlite_with_rowid": False},)

    pipeline: str = Field(primary_key=True)
    trigger: str = Field(primary_key=True)
    first_seen_at: float


class ScheduleSlotRecord(SQLModel, table=True):
    """A cron slot that fired: the unique key makes a slot fire at most once, whoever claims it."""

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("pipeline", "trigger", "slot_at", name="uq_schedule_slots_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    pipeline: str
    trigger: str
    slot_at: float  # the cron time it stands for (epoch seconds)
    claimed_at: float
    claimed_by: str  # "worker PID@HOST" or "tick PID@HOST"
    # No foreign key: the slot must stay claimed after gc deletes its run.
    run_id: str | None = None
    note: str | None = None  # why no run started (e.g. the definition cannot run)


class WorkerLaunchRecord(SQLModel, table=True):
    """A run the worker started as a child process, and whether its shutdown interrupted it."""

    __tablename__ = "worker_launches"
    __table_args__ = (Index("ix_worker_launches_interrupted", "interrupted_at", "resumed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str
    reason: str  # scheduled | queued | event | approved | orphaned | interrupted
    launched_at: float
    worker: str  # "PID@HOST"
    child_pid: int | None = None
    interrupted_at: float | None = None  # stopped after the shutdown grace: resumed at the next start
    resumed_at: float | None = None


class GoalRecord(SQLModel, table=True):
    """A goal (DESIGN §8, `orchestrate goal add`): a metric, a target, maybe a deadline."""

    __tablename__ = "goals"

    name: str = Field(primary_key=True)
    metric: str  # domain.review.GoalMetric
    target: float
    created_at: float
    since: float  # succeeded_runs counts runs finished from here on (--since, else created_at)
    deadline: float | None = None  # --by, epoch seconds
    created_by: str | None = None


class GoalLinkRecord(SQLModel, table=True):
    """What a goal measures: runs of a pipeline, or of every pipeline with a label."""

    __tablename__ = "goal_links"
    __table_args__ = ({"sqlite_with_rowid": False},)

    goal: str = Field(primary_key=True, foreign_key="goals.name", ondelete="CASCADE")
    kind: str = Field(primary_key=True)  # domain.review.LinkKind: pipeline | label
    value: str = Field(primary_key=True)
    created_at: float


class ReviewActionRecord(SQLModel, table=True):
    """A pipeline `review --apply` (or the worker) started for a finding; claims its cool-down."""

    __tablename__ = "review_actions"
    __table_args__ = (Index("ix_review_actions_fingerprint", "fingerprint", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str  # finding kind + ":" + subject
    kind: str  # domain.review.FindingKind
    subject: str
    pipeline: str  # the pipeline started (review.on in orchestrate.yaml)
    status: str  # domain.review.ActionStatus
    created_at: float
    cooldown_until: float  # the same fingerprint schedules nothing before this
    run_id: str | None = None  # no foreign key: the record outlives the run gc deletes
    event_id: str | None = None
    by: str | None = None  # the user, or "worker"
    error: str | None = None
    finding: str = "{}"  # JSON of the finding, as given to the run as its event payload


TABLES = (
    PipelineRecord,
    PipelineVersionRecord,
    RunRecord,
    StageRecord,
    StageAttemptRecord,
    RunEventRecord,
    TriggerEventRecord,
    ApprovalRequestRecord,
    ApprovalAuditRecord,
    TaskMetricRecord,
    ReportedPipelineRecord,
    ReportedStepRecord,
    ReportedJobRecord,
    RunVariantRecord,
    ScheduleRecord,
    ScheduleSlotRecord,
    WorkerLaunchRecord,
    GoalRecord,
    GoalLinkRecord,
    ReviewActionRecord,
)
TABLE_NAMES = frozenset(str(cls.__tablename__) for cls in TABLES)
