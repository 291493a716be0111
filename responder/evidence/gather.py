"""Gathering an incident's evidence (runbook 4): workload logs and credential metadata.

For each of the provider's ``workloads``: its pods (``list`` by label selector),
their readiness and restarts, and the error lines of the last ``since_seconds``
of each container's log (``sinceSeconds``, bounded by ``tailLines`` and
``limitBytes``), redacted and bounded in count and length.  For each of its
``credentials``: the Secret's metadata only (feedguard.core.kube), with when it
last changed relative to the incident's first alert.

What it returns is a JSON snapshot the core keeps on the incident; ``plan``
says what would be read, for dry run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from feedguard.core.catalog import CredentialSecret, Provider, Workload
from feedguard.core.kube import KubeError, KubeReader, PodState

from ..plugins import IncidentView
from .lines import error_lines
from .settings import EvidenceSettings

JSON = dict[str, Any]


def minutes(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90 * 60:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def first_alert_at(incident: IncidentView) -> float:
    starts = [a.starts_at for a in incident.alerts]
    return min(starts) if starts else incident.opened_at


def credential_note(
    changed_at: float | None,
    expires_at: float | None,
    first_alert: float,
    now: float,
    window: float,
) -> str | None:
    """'rotated 12 min before the first alert', 'expired 3 h ago', ... or None."""
    notes = []
    if changed_at is not None:
        before = first_alert - changed_at
        if 0 <= before <= window:
            notes.append(f"rotated {minutes(before)} before the first alert")
        elif before < 0:
            notes.append(f"changed {minutes(before)} after the first alert")
    if expires_at is not None:
        if expires_at <= now:
            notes.append(f"expired {minutes(now - expires_at)} ago")
        elif expires_at - now <= 7 * 86400:
            notes.append(f"expires in {minutes(expires_at - now)}")
    return "; ".join(notes) or None


def pod_summary(pod: PodState) -> JSON:
    return {
        "name": pod.name,
        "phase": pod.phase,
        "ready": pod.ready,
        "restarts": pod.restarts,
        "last_terminated": dict(pod.last_terminated),
        "waiting": dict(pod.waiting),
    }


def would_read(settings: EvidenceSettings, provider: Provider) -> list[str]:
    """What gathering would read for the provider (dry run, simulate)."""
    s = settings
    reads = [
        f"list pods -n {w.namespace} -l {w.selector}; logs of each container "
        f"(sinceSeconds={s.since_seconds}, tailLines={s.tail_lines}, "
        f"limitBytes={s.limit_bytes}), error lines kept (at most {s.max_error_lines})"
        for w in provider.workloads
    ]
    reads += [
        f"secret {c.namespace}/{c.name}: metadata only (PartialObjectMetadata)"
        + (f", expiry annotation {c.expiry_annotation}" if c.expiry_annotation else "")
        for c in provider.credentials
    ]
    return reads


class EvidenceGatherer:
    def __init__(
        self, settings: EvidenceSettings, reader: Callable[[], Awaitable[KubeReader]]
    ) -> None:
        self._settings = settings
        self._reader = reader  # built on first use: no cluster needed until evidence is due
        self._limit = asyncio.Semaphore(settings.concurrency)

    def wanted(self, provider: Provider) -> bool:
        return bool(provider.workloads or provider.credentials)

    def plan(self, provider: Provider) -> JSON:
        return {"would_read": would_read(self._settings, provider)}

    async def gather(self, provider: Provider, incident: IncidentView, now: float) -> JSON:
        reader = await self._reader()
        workloads = await asyncio.gather(*(self._workload(reader, w) for w in provider.workloads))
        first = first_alert_at(incident)
        credentials = await asyncio.gather(
            *(self._credential(reader, c, first, now) for c in provider.credentials)
        )
        return {
            "first_alert_at": first,
            "workloads": list(workloads),
            "credentials": list(credentials),
            "summary": summary(list(workloads), list(credentials)),
        }

    async def _logs(self, reader: KubeReader, pod: PodState, container: str) -> str:
        s = self._settings
        async with self._limit:
            return await reader.pod_log(
                pod.namespace,
                pod.name,
                container,
                since_seconds=s.since_seconds,
                limit_bytes=s.limit_bytes,
                tail_lines=s.tail_lines,
            )

    async def _workload(self, reader: KubeReader, workload: Workload) -> JSON:
        s = self._settings
        out: JSON = {"namespace": workload.namespace, "selector": workload.selector}
        try:
            async with self._limit:
                pods = await reader.list_pods(workload.namespace, workload.selector)
        except KubeError as exc:
            return {**out, "error": str(exc), "pods": [], "error_lines": []}
        shown = pods[: s.max_pods]
        pairs = [(pod, c) for pod in shown for c in pod.containers]
        texts = await asyncio.gather(
            *(self._logs(reader, pod, c) for pod, c in pairs), return_exceptions=True
        )
        found: list[JSON] = []
        log_errors: list[str] = []
        truncated = False
        for (pod, container), text in zip(pairs, texts, strict=True):
            if isinstance(text, BaseException):
                if not isinstance(text, KubeError):
                    raise text
                log_errors.append(str(text))
                continue
            truncated = truncated or len(text.encode()) >= s.limit_bytes
            for line in error_lines(text, s.max_line_chars):
                found.append(
                    {"pod": pod.name, "container": container, "at": line.at, "line": line.text}
                )
        found.sort(key=lambda e: e["at"] or 0.0)
        return {
            **out,
            "pods": [pod_summary(p) for p in shown],
            "pods_total": len(pods),
            "not_ready": [p.name for p in pods if not p.ready],
            "restarts": sum(p.restarts for p in pods),
            "error_lines": found[-s.max_error_lines :],
            "error_lines_total": len(found),
            "log_truncated": truncated,
            "log_errors": log_errors,
        }

    async def _credential(
        self, reader: KubeReader, secret: CredentialSecret, first: float, now: float
    ) -> JSON:
        out: JSON = {"namespace": secret.namespace, "name": secret.name}
        try:
            async with self._limit:
                meta = await reader.secret_metadata(
                    secret.namespace, secret.name, secret.expiry_annotation
                )
        except KubeError as exc:
            return {**out, "error": str(exc)}
        return {
            **out,
            "created_at": meta.created_at,
            "modified_at": meta.modified_at,
            "modified_by": meta.modified_by,
            "expires_at": meta.expires_at,
            "note": credential_note(
                meta.changed_at, meta.expires_at, first, now, self._settings.rotation_window_seconds
            ),
        }


def summary(workloads: list[JSON], credentials: list[JSON]) -> list[str]:
    """A few lines for the note: what stands out."""
    lines = []
    for w in workloads:
        where = f"{w['namespace']} {w['selector']}"
        if w.get("error"):
            lines.append(f"{where}: unreadable ({w['error']})")
            continue
        parts = [f"{len(w['pods'])} pods"]
        if w["not_ready"]:
            parts.append(f"not ready: {', '.join(w['not_ready'])}")
        if w["restarts"]:
            parts.append(f"{w['restarts']} restarts")
        parts.append(f"{w['error_lines_total']} error lines")
        lines.append(f"{where}: " + ", ".join(parts))
    for c in credentials:
        name = f"{c['namespace']}/{c['name']}"
        if c.get("error"):
            lines.append(f"secret {name}: unreadable ({c['error']})")
        elif c.get("note"):
            lines.append(f"secret {name}: {c['note']}")
    return lines
