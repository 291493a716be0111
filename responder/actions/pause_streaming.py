"""The streaming twin of pause_dags: stop the provider's SeaTunnel jobs with a
savepoint during the outage, and resubmit them from it on recovery.

One target per ``streaming_jobs`` entry of the provider; the resource key is the
job name, so the core's reference counting keeps a job stopped until every
incident holding it recovered.  On firing: ``POST /stop-job`` with
``isStopWithSavePoint: true``, then ``GET /job-info/{id}`` until the job reaches
``SAVEPOINT_DONE``.  On recovery: ``POST /submit-job?jobId=<same id>&
isStartWithSavePoint=true`` with the job's config (the catalog's
``config_file``, else ``<job_templates_dir>/<name>.conf.tmpl``), HOCON unless the
file ends in ``.json``.

It touches only jobs it stopped: a job not RUNNING when the incident reaches it
is recorded as such (previous ``{"stopped_by_feedguard": false}``) and left alone
on recovery; a job someone restarted meanwhile is left running.  The config is
read before stopping, so a job whose config cannot be read is never stopped; the
ledger keeps its path and SHA-256, never its text (job configs hold
credentials).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from feedguard.core.catalog import StreamingJob
from feedguard.core.seatunnel import (
    END_STATES,
    ConfigFormat,
    SeaTunnelClient,
    SeaTunnelError,
    SeaTunnelRefused,
)

from ..evidence.lines import redact
from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .params import check_params

_STOPPING = "DOING_SAVEPOINT"
_STOPPED = "SAVEPOINT_DONE"


@dataclass(frozen=True)
class JobConfig:
    path: str
    text: str
    sha256: str
    format: ConfigFormat


def seatunnel_error(exc: SeaTunnelError, what: str) -> ActionError:
    # 4xx (bad request, credentials, wrong context path) will not change on a retry.
    retryable = not isinstance(exc, SeaTunnelRefused) or exc.status == 429
    # The engine's message may quote the submitted config, credentials included.
    return ActionError(
        f"{what}: {redact(str(exc))}",
        retryable=retryable,
        status=exc.status or None,
        retry_after=exc.retry_after,
    )


class PauseStreaming:
    name: ClassVar[str] = "pause_streaming"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "seatunnel"

    def __init__(
        self,
        client: SeaTunnelClient,
        templates_dir: str,
        savepoint_timeout_seconds: float,
        poll_seconds: float = 1.0,
    ) -> None:
        self._client = client
        self._templates = Path(templates_dir)
        self._timeout = savepoint_timeout_seconds
        self._poll = poll_seconds

    def config_path(self, job: StreamingJob) -> Path:
        return (
            Path(job.config_file) if job.config_file else self._templates / f"{job.name}.conf.tmpl"
        )

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        check_params(self.name, ctx.params, ("jobs",))
        jobs = {j.name: j for j in ctx.provider.streaming_jobs}
        names = ctx.params.get("jobs", list(jobs))
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ActionError(
                f"pause_streaming: parameter jobs must be a list of job names, got {names!r}",
                retryable=False,
            )
        missing = [n for n in names if n not in jobs]
        if missing:
            raise ActionError(
                f"pause_streaming: {missing} not in streaming_jobs of {ctx.provider.name}",
                retryable=False,
            )
        return [
            Target(
                description=f"stop SeaTunnel job {name} with a savepoint",
                resource=f"seatunnel:job:{name}",
                params={"job": name, "config_file": str(self.config_path(jobs[name]))},
            )
            for name in names
        ]

    async def _config(self, path: str, what: str) -> JobConfig:
        try:
            text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
        except OSError as exc:
            raise ActionError(
                f"{what}: cannot read the job config {path}: {exc.strerror}", retryable=False
            ) from exc
        if not text.strip():
            raise ActionError(f"{what}: the job config {path} is empty", retryable=False)
        return JobConfig(
            path=path,
            text=text,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            format="json" if path.endswith(".json") else "hocon",
        )

    async def _wait_stopped(self, job_id: str, what: str) -> str:
        """Poll job-info until the savepoint is done; the end state seen."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._timeout
        while True:
            job = await self._client.job_info(job_id)
            status = job.status if job else "NOT_FOUND"
            if status in END_STATES or status == "NOT_FOUND":
                return status
            if loop.time() >= give_up:
                raise ActionError(
                    f"{what}: savepoint not done after {self._timeout:g}s (job {job_id} is "
                    f"{status})",
                    retryable=True,
                )
            await asyncio.sleep(self._poll)

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        name = str(target.params["job"])
        what = f"stop SeaTunnel job {name}"
        # Before anything is stopped: a job that could not be resubmitted stays up.
        config = await self._config(str(target.params["config_file"]), what)
        detail: dict[str, JSON] = {"job": name, "config_file": config.path}
        try:
            running = [j for j in await self._client.running_jobs() if j.name == name]
            live = next((j for j in running if j.status == "RUNNING"), None)
            # A stop sent by an earlier attempt (maybe a replica that died before
            # recording it) is ours: its savepoint is the one to resume from.
            intent = ctx.intents.get(target)
            ours = intent.detail.get("job_id") if intent is not None else None
            if live is None and ours is None:
                states = sorted({j.status for j in running}) or ["not in /running-jobs"]
                return Outcome(
                    previous={"stopped_by_feedguard": False},
                    detail={**detail, "note": f"not RUNNING ({', '.join(states)}): left alone"},
                    changed=False,
                )
            job_id = live.job_id if live is not None else str(ours)
            if live is not None:
                await ctx.intents.record(
                    target, "RUNNING", _STOPPED, {"job_id": job_id}
                )  # before the stop
                await self._client.stop_job(job_id, savepoint=True)
            final = await self._wait_stopped(job_id, what)
        except SeaTunnelError as exc:
            raise seatunnel_error(exc, what) from exc
        if final != _STOPPED:
            raise ActionError(
                f"{what}: the job ended {final}, not {_STOPPED}: no savepoint to resume from",
                retryable=False,
            )
        previous = {
            "stopped_by_feedguard": True,
            "job_id": job_id,
            "config_file": config.path,
            "config_sha256": config.sha256,
        }
        return Outcome(
            previous=previous,
            detail={**detail, "job_id": job_id, "state": final},
            changed=live is not None,
        )

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        name = str(target.params["job"])
        if not isinstance(previous, dict) or not previous.get("stopped_by_feedguard"):
            return Outcome(
                previous=previous,
                detail={"job": name, "note": "was not running before feedguard: left as is"},
                changed=False,
            )
        job_id = str(previous["job_id"])
        what = f"resubmit SeaTunnel job {name} ({job_id}) from its savepoint"
        path = str(previous.get("config_file") or target.params["config_file"])
        config = await self._config(path, what)
        detail: dict[str, JSON] = {"job": name, "job_id": job_id, "config_file": path}
        if config.sha256 != previous.get("config_sha256"):
            detail["note"] = (
                "the job config changed while the job was stopped: submitted as it is now"
            )
        try:
            running = [j for j in await self._client.running_jobs() if j.name == name]
            if running:
                ids = ", ".join(f"{j.job_id} {j.status}" for j in running)
                return Outcome(
                    previous=previous,
                    detail={**detail, "note": f"already running ({ids}): left as is"},
                    changed=False,
                )
            submitted = await self._client.submit_job(
                config.text,
                config_format=config.format,
                job_id=job_id,
                job_name=name,
                start_with_savepoint=True,
            )
        except SeaTunnelError as exc:
            raise seatunnel_error(exc, what) from exc
        return Outcome(previous=previous, detail={**detail, "submitted_job_id": submitted})
