"""One stage's work: its attempts, retries, timeout, outputs, and what its commands read.

The scheduler decides *when* a stage runs; a StageRunner does it: interpolates the
command (variables, upstream outputs, event, matrix, approval feedback), builds the
environment, runs each attempt through the executor under the stage's timeout,
reads its outputs, and reports every attempt to the sink. Secrets are masked in
everything it reports.
"""

from __future__ import annotations

import functools
import math
import os
import random
import signal
from collections.abc import Callable

import anyio

from orchestrate.domain.events import EventSink, StageFinished, StageStarted
from orchestrate.domain.experiments import lookup as variant_lookup
from orchestrate.domain.experiments import prompt_variant, stage_model, stage_skill
from orchestrate.domain.status import StageStatus
from orchestrate.engine.config import Executor, Job, RunConfig, format_seconds, safe_name
from orchestrate.engine.masking import mask_text
from orchestrate.engine.outputs import OutputError, read_outputs
from orchestrate.engine.process import ProcessResult, command_argv, display_argv
from orchestrate.engine.python_stage import PythonStageError, StageContext, run_python, write_traceback
from orchestrate.engine.usage import RESERVED as USAGE_KEYS
from orchestrate.engine.usage import parse_usage
from orchestrate.spec.interpolate import interpolate
from orchestrate.spec.model import StageSpec


class StageRunner:
    def __init__(
        self,
        config: RunConfig,
        sink: EventSink,
        executor: Executor,
        clock: Callable[[], float],
        stop_reason: Callable[[], str | None],
    ) -> None:
        self.cfg = config
        self.sink = sink
        self.executor = executor
        self.clock = clock
        self.stop_reason = stop_reason
        self.outputs: dict[str, dict[str, str]] = {}
        self.attempts: dict[str, int] = {}
        self.approval: dict[str, str] = dict(config.approval)
        self.repair: dict[str, str] = {}  # ${repair.*} while a repair loop runs
        self.run_info: dict[str, str] = {}  # ${run.status}, ${run.failed} for handlers
        self.last: dict[
            str, tuple[int | None, str | None]
        ] = {}  # stage → (exit code, error) of its last attempt
        values = list(config.secrets.values())
        self.mask: Callable[[str], str] = (
            (lambda text: mask_text(text, values)) if values else (lambda text: text)
        )

    def last_attempt(self, stage: str) -> tuple[int | None, str | None] | None:
        return self.last.get(stage)

    def log_path(self, stage: str) -> str:
        return os.path.join(self.cfg.log_dir, safe_name(stage) + ".log")

    async def precheck(self, spec: StageSpec) -> StageStatus | None:
        """Poll ``precheck.run`` until it passes (None) or its timeout ends (FAILED, with its message).

        Not an attempt: its output goes to the stage log under a header, and a failure is
        recorded on the stage alone.
        """
        check = spec.precheck or {}
        timeout = float(check.get("timeout") or 60)
        interval = float(check.get("interval") or 1)
        log_path = self.log_path(spec.name)
        os.makedirs(self.cfg.log_dir, exist_ok=True)
        lookup = functools.partial(self.lookup, stage=spec)
        argv = tuple(command_argv(interpolate(str(check.get("run", "true")), lookup, shell=True)))
        env = dict(self.cfg.base_env)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"--- orchestrate: precheck: {display_argv(argv)} ---\n")
        with anyio.move_on_after(timeout):
            while True:
                job = Job(self.cfg.run_id, spec.name, 0, argv, env, log_path, os.devnull)
                if (await self.executor.run(job)).exit_code == 0:
                    return None
                await anyio.sleep(interval)
        message = (
            check.get("message")
            or f"precheck `{display_argv(argv)}` did not pass within {format_seconds(timeout)}"
        )
        error = self.mask(f"precheck failed: {message}")
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"orchestrate: {error}\n")
        self.sink.emit(
            StageFinished(self.cfg.run_id, spec.name, 0, self.clock(), StageStatus.FAILED, error=error)
        )
        return StageStatus.FAILED

    async def run(self, spec: StageSpec) -> StageStatus:
        """Every attempt the stage's retry policy allows; the final status."""
        if spec.precheck:
            failed = await self.precheck(spec)
            if failed is not None:
                return failed
        cfg = self.cfg
        retry = spec.retry
        agent = cfg.agents.get(spec.agent) if spec.agent else None
        timeout = spec.timeout or (agent.timeout if agent else None) or cfg.default_timeout or math.inf
        base = os.path.join(cfg.log_dir, safe_name(spec.name))
        log_path = base + ".log"
        output_path = base + ".out"
        for i in range(retry.max + 1):
            attempt = self.attempts.get(spec.name, 0) + 1
            self.attempts[spec.name] = attempt
            try:
                argv = self.argv(spec)
                env = self.env(spec, attempt, output_path)
            except KeyError as e:
                return self.finish_early(spec.name, attempt, log_path, self.unresolved(e.args[0]))
            if cfg.budget is not None:  # forecast + spend so far against the budgets (engine.budget)
                refused = await cfg.budget.before(self.sink, cfg.run_id, spec, self.model(spec))
                if refused is not None:
                    return self.finish_early(spec.name, attempt, log_path, refused)
            # A header before every attempt after the first, and before a first one whose log is not
            # empty: a crashed process may have started it without living to record it.
            if attempt > 1 or (attempt == 1 and os.path.exists(log_path) and os.path.getsize(log_path)):
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(f"\n--- orchestrate: attempt {attempt} ---\n")
                if os.path.exists(output_path):
                    os.unlink(output_path)
            on_start = self.starter(spec.name, attempt, log_path, self.mask(display_argv(argv)))
            job = Job(cfg.run_id, spec.name, attempt, argv, env, log_path, output_path, on_start)
            python_outputs: dict[str, str] = {}
            try:
                with anyio.move_on_after(timeout) as deadline:
                    if spec.python is not None:
                        result, python_outputs = await self._python(spec, attempt, env, log_path, on_start)
                    else:
                        result = await self.executor.run(job)
                on_start(None)  # an executor that never said so
            except anyio.get_cancelled_exc_class():
                on_start(None)
                with anyio.CancelScope(shield=True):
                    self.sink.emit(
                        StageFinished(
                            cfg.run_id,
                            spec.name,
                            attempt,
                            self.clock(),
                            StageStatus.CANCELLED,
                            error=self.stop_reason() or "cancelled",
                        )
                    )
                raise
            outputs: dict[str, str] = {}
            error: str | None = None
            code: int | None = None
            if deadline.cancelled_caught:
                error = f"timed out after {format_seconds(timeout)}"
            else:
                code = result.exit_code
                if code == 0:
                    try:
                        written = {**read_outputs(output_path), **python_outputs}
                        outputs = {k: self.mask(v) for k, v in written.items()}
                    except OutputError as e:
                        error = self.mask(str(e))
                elif code < 0:
                    error = f"killed by {signal.Signals(-code).name}"
                else:
                    error = result.error or f"exit code {code}"
            if error is not None:  # a failed or timed-out attempt spent too: keep the usage it reported
                outputs = self.spent_usage(output_path)
            if agent is not None:  # what the agent used, for metrics: parsed from its output
                usage = parse_usage(agent.usage, log_path, agent.usage_paths)
                model = self.model(spec)
                outputs = {**({"model": model} if model else {}), **usage, **outputs}
            status = StageStatus.SUCCEEDED if error is None else StageStatus.FAILED
            self.last[spec.name] = (code, error)
            again = (
                status is StageStatus.FAILED
                and i < retry.max
                and (retry.exit_codes is None or code in retry.exit_codes)
            )
            self.sink.emit(
                StageFinished(
                    cfg.run_id, spec.name, attempt, self.clock(), status, code, error, again, outputs
                )
            )
            if cfg.budget is not None:
                cfg.budget.observe(self.sink, cfg.run_id, spec, outputs)
            if not again:
                if outputs:
                    self.outputs[spec.name] = outputs
                return status
            try:
                await anyio.sleep(retry.backoff * 2**i * random.uniform(0.8, 1.2))
            except anyio.get_cancelled_exc_class():
                # Stopped while waiting to retry: the failure stands, no further attempt.
                self.sink.emit(
                    StageFinished(cfg.run_id, spec.name, attempt, self.clock(), status, code, error, False)
                )
                return status
        raise AssertionError("unreachable: the last attempt always returns")

    async def _python(
        self,
        spec: StageSpec,
        attempt: int,
        env: dict[str, str],
        log_path: str,
        on_start: Callable[[int | None], None],
    ) -> tuple[ProcessResult, dict[str, str]]:
        """One attempt of a python stage, in this process; a failure is a result, with its traceback logged."""
        on_start(None)
        with open(log_path, "a", encoding="utf-8") as log:
            context = StageContext(
                self.cfg.run_id,
                spec.name,
                attempt,
                self.cfg.workspace,
                self.cfg.variables,
                {k: dict(v) for k, v in self.outputs.items()},
                log,
                env,
            )
            try:
                return ProcessResult(0), await run_python(str(spec.python), context)
            except PythonStageError as e:
                log.write(f"orchestrate: {e}\n")
                return ProcessResult(1, str(e)), {}
            except Exception as e:  # the stage's own code failed: an outcome, not a bug of ours
                return ProcessResult(1, self.mask(write_traceback(log, e))), {}

    def argv(self, spec: StageSpec) -> tuple[str, ...]:
        lookup = functools.partial(self.lookup, stage=spec)
        if spec.python is not None:
            return ("python", spec.python)
        if spec.agent is not None:
            agent = self.cfg.agents[spec.agent]
            task = interpolate(spec.task or "", lookup, shell=False)
            fill = {
                "{task}": task,
                "{model}": self.model(spec) or "",
                "{skill}": stage_skill(self.cfg.variants, spec.group or spec.name) or "",
                "{workspace}": self.cfg.workspace,
            }
            out = []
            for part in agent.command:
                for key, value in fill.items():
                    part = part.replace(key, value)
                out.append(part)
            return tuple(out)
        if spec.uses is not None and self.cfg.child_command is not None:
            values = {k: interpolate(str(v), lookup, shell=False) for k, v in spec.with_.items()}
            return tuple(self.cfg.child_command(spec.uses, values))
        return tuple(command_argv(interpolate(spec.run or "", lookup, shell=True)))

    def spent_usage(self, output_path: str) -> dict[str, str]:
        """The usage keys (cost, tokens, model...) a failed attempt wrote, for budgets and metrics."""
        try:
            written = read_outputs(output_path)
        except OutputError:
            return {}
        return {k: self.mask(v) for k, v in written.items() if k in USAGE_KEYS}

    def model(self, spec: StageSpec) -> str | None:
        """The agent's model, unless a variant of the run sets one for this stage."""
        agent = self.cfg.agents.get(spec.agent) if spec.agent else None
        chosen = stage_model(self.cfg.variants, spec.group or spec.name)
        return chosen or (agent.model if agent else None)

    def starter(self, stage: str, attempt: int, log_path: str, command: str) -> Callable[[int | None], None]:
        """StageStarted, emitted once, when the executor says the work began (so it can carry the pid)."""
        done = False

        def on_start(pid: int | None) -> None:
            nonlocal done
            if not done:
                done = True
                self.sink.emit(
                    StageStarted(self.cfg.run_id, stage, attempt, self.clock(), log_path, command, pid)
                )

        return on_start

    def finish_early(self, stage: str, attempt: int, log_path: str, error: str) -> StageStatus:
        now = self.clock()
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"orchestrate: {error}\n")
        self.sink.emit(StageStarted(self.cfg.run_id, stage, attempt, now, log_path))
        self.sink.emit(StageFinished(self.cfg.run_id, stage, attempt, now, StageStatus.FAILED, error=error))
        return StageStatus.FAILED

    def unresolved(self, name: str) -> str:
        stage, _, key = name.removeprefix("stages.").partition(".outputs.")
        if name.startswith("stages.") and key:
            return f'${{{name}}}: stage {stage} wrote no output "{key}"'
        return f"unknown reference ${{{name}}}"

    def lookup(self, name: str, stage: StageSpec | None = None) -> str | None:
        if name in self.cfg.variables:
            return self.cfg.variables[name]
        if name == "run.id":
            return self.cfg.run_id
        if name.startswith("run.") and name.removeprefix("run.") in self.run_info:
            return self.run_info[name.removeprefix("run.")]
        if name.startswith("repair."):
            return self.repair.get(name.removeprefix("repair."), "")
        if name.startswith("approval."):
            return self.approval.get(
                name.removeprefix("approval."), "" if name == "approval.feedback" else "1"
            )
        if name.startswith("matrix.") and stage is not None:
            return stage.matrix_values.get(name.removeprefix("matrix."))
        if name.startswith("event."):
            return self.cfg.event.lookup(name) if self.cfg.event else None
        if name.startswith("variant."):
            return variant_lookup(self.cfg.variants, name, (stage.group or stage.name) if stage else None)
        if name.startswith("stages.") and ".outputs." in name:
            producer, _, key = name[len("stages.") :].partition(".outputs.")
            return self.outputs.get(producer, {}).get(key)
        return None

    def env(self, spec: StageSpec, attempt: int, output_path: str) -> dict[str, str]:
        env = dict(self.cfg.base_env)
        env["ORCHESTRATE_RUN_ID"] = self.cfg.run_id
        env["ORCHESTRATE_PIPELINE"] = self.cfg.spec.name
        env["ORCHESTRATE_STAGE"] = spec.name
        env["ORCHESTRATE_ATTEMPT"] = str(attempt)
        env["ORCHESTRATE_WORKSPACE"] = self.cfg.workspace
        env["ORCHESTRATE_OUTPUT"] = output_path
        if spec.environment:
            env["ORCHESTRATE_ENVIRONMENT"] = spec.environment
        if spec.agent is not None:
            agent = self.cfg.agents[spec.agent]
            env.update(agent.env)
            env["ORCHESTRATE_AGENT"] = agent.name
            model = self.model(spec)
            if model:
                env["ORCHESTRATE_MODEL"] = model
        pairs = prompt_variant(self.cfg.variants, spec.group or spec.name)
        if pairs:
            env["ORCHESTRATE_VARIANTS"] = pairs
        skill = stage_skill(self.cfg.variants, spec.group or spec.name)
        if skill:
            env["ORCHESTRATE_SKILL"] = skill
        for name in (*self.cfg.spec.secrets, *spec.secrets):
            env[name] = self.cfg.secrets[name]
        for key, value in spec.env.items():
            env[key] = interpolate(value, functools.partial(self.lookup, stage=spec), shell=False)
        return env
