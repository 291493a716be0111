"""The incident page's evidence section (docs/evidence.md): every snapshot, newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]
# views.moment: an epoch as {"utc", "iso", "relative"} for the page's when() macro.
Moment = Callable[[float | None, float], dict[str, str] | None]


def _workload(w: Doc, now: float, moment: Moment) -> Doc:
    return {
        "where": f"{w.get('namespace')} {w.get('selector')}",
        "error": w.get("error"),
        "pods": [
            {
                **p,
                "why": ", ".join(
                    [f"{c}: {r}" for c, r in (p.get("waiting") or {}).items()]
                    + [f"{c} last ended {r}" for c, r in (p.get("last_terminated") or {}).items()]
                ),
            }
            for p in w.get("pods") or []
        ],
        "pods_total": w.get("pods_total", len(w.get("pods") or [])),
        "lines": [
            {**e, "at": moment(e.get("at"), now)} for e in reversed(w.get("error_lines") or [])
        ],
        "lines_total": int(w.get("error_lines_total") or 0),
        "truncated": bool(w.get("log_truncated")),
        "log_errors": list(w.get("log_errors") or []),
    }


def _credential(c: Doc, now: float, moment: Moment) -> Doc:
    return {
        "name": f"{c.get('namespace')}/{c.get('name')}",
        "error": c.get("error"),
        "created": moment(c.get("created_at"), now),
        "modified": moment(c.get("modified_at"), now),
        "by": c.get("modified_by"),
        "expires": moment(c.get("expires_at"), now),
        "note": c.get("note"),
    }


def evidence_section(doc: Doc, now: float, moment: Moment) -> list[Doc]:
    return [
        {
            "slot": snap.get("slot"),
            "at": moment(snap.get("gathered_at"), now),
            "dry_run": bool(snap.get("dry_run")),
            "error": snap.get("error"),
            "summary": list(snap.get("summary") or []),
            "would_read": list(snap.get("would_read") or []),
            "workloads": [_workload(w, now, moment) for w in snap.get("workloads") or []],
            "credentials": [_credential(c, now, moment) for c in snap.get("credentials") or []],
        }
        for snap in reversed(doc.get("evidence") or [])
    ]
