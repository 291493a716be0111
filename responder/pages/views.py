"""What the incident pages show, built from incident documents by pure functions.

The templates only lay these dicts out; every decision (which times, which
links are safe, what a record means in words) is made here, where it is tested.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote, urlsplit

from .. import verified_recovery as vr
from ..incidents import alert_counts, approval_steps, pending_work, step_what
from ..isotimes import iso_utc
from ..verification_polls import dbt_failure
from .evidence import evidence_section

Doc = dict[str, Any]

# Timeline fields shown as the event's own text, not as extra details.
_TIMELINE_OWN = frozenset({"at", "event", "repeats", "last_at"})


def relative(at: float, now: float) -> str:
    """``3 min ago`` / ``in 2 h`` / ``just now``."""
    delta = now - at
    future = delta < 0
    seconds = abs(delta)
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            amount = int(seconds // size)
            text = f"{amount} {unit}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def utc(at: float) -> str:
    """``2026-09-21 14:13:20 UTC``: seconds are enough to read (the ISO twin keeps more)."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def moment(at: float | None, now: float) -> dict[str, str] | None:
    if at is None:
        return None
    return {"utc": utc(at), "iso": iso_utc(at), "relative": relative(at, now)}


def safe_link(url: Any) -> str | None:
    """An http(s) URL, or a repository-relative path; never ``javascript:`` or the like."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and not url.startswith("//"):
        return url
    return None


def show(value: Any) -> str:
    """A JSON value as people read it: strings bare, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _alerts(doc: Doc, now: float) -> list[dict[str, Any]]:
    rows = []
    for alert in sorted(doc["alerts"].values(), key=lambda a: a["starts_at"]):
        annotations = dict(alert.get("annotations") or {})
        rows.append(
            {
                "alertname": alert["alertname"],
                "status": alert["status"],
                "labels": sorted(dict(alert.get("labels") or {}).items()),
                "summary": annotations.pop("summary", None),
                "description": annotations.pop("description", None),
                "runbook": safe_link(annotations.pop("runbook_url", None)),
                "dashboard": safe_link(annotations.pop("dashboard_url", None)),
                "annotations": sorted(annotations.items()),
                "starts": moment(alert["starts_at"], now),
                "ends": moment(alert.get("ends_at"), now),
            }
        )
    return rows


def truncated_alerts(doc: Doc) -> int:
    """The most alerts Alertmanager left out of one of this incident's notifications."""
    return max((int(e.get("truncated") or 0) for e in doc["timeline"]), default=0)


def _detail(key: str, value: Any) -> str:
    # Epoch fields of an event (last_success_before, next_probe_at, ...) read as times.
    epoch = key == "last_success_before" or key.endswith("_at")
    if epoch and isinstance(value, int | float) and not isinstance(value, bool):
        return utc(float(value))
    return show(value)


def _timeline(doc: Doc, now: float) -> list[dict[str, Any]]:
    rows = []
    for entry in doc["timeline"]:
        extra = [
            (k, _detail(k, v))
            for k, v in entry.items()
            if k not in _TIMELINE_OWN and v not in (None, 0)
        ]
        rows.append(
            {
                "at": moment(entry["at"], now),
                "event": entry["event"],
                "repeats": entry.get("repeats"),
                "last": moment(entry.get("last_at"), now),
                "details": extra,
            }
        )
    return rows


def outcome(record: Doc) -> str:
    """What became of the target, in words: restored, left alone and why, held by whom."""
    detail = record.get("detail") or {}
    result = record["result"]
    reverts = bool(record.get("reverts"))
    if result == "dry_run":
        return ("revert planned" if reverts else "planned") + f" (dry run): {detail.get('why', '')}"
    if result == "failure":
        return f"failed: {record.get('error') or 'unknown error'}"
    if result == "skipped":
        holders = detail.get("still_held_by")
        if holders:
            return f"left alone: still held by {', '.join(holders)}"
        why = str(detail.get("why", "skipped"))
        # An undo that kept someone else's value already says "left alone: …".
        return why if why.startswith("left alone") else f"left alone: {why}"
    if reverts and "restored" in detail:
        return f"restored {show(detail['restored'])}"
    if detail.get("already_held_by"):
        return f"not applied again: {detail.get('why', '')}"
    if detail.get("changed") is False:
        return "already in the wanted state"
    return "applied"


def _actions(doc: Doc, now: float) -> list[dict[str, Any]]:
    rows = []
    for record in doc["actions"]:
        detail = record.get("detail") or {}
        previous = record.get("previous")
        rows.append(
            {
                "at": moment(record["at"], now),
                "phase": record["phase"],
                "action": record["action"],
                "target": record["target"],
                "revert": bool(record.get("reverts")),
                "result": record["result"],
                "replaced": None if previous is None else show(previous),
                "outcome": outcome(record),
                "holders": detail.get("still_held_by")
                or ([detail["already_held_by"]] if detail.get("already_held_by") else []),
            }
        )
    return rows


def _notes(doc: Doc, now: float) -> dict[str, Any]:
    notes = doc.get("notes") or {}
    channel = notes.get("slack_channel")
    ts = notes.get("slack_ts")
    link = None
    if isinstance(channel, str) and isinstance(ts, str) and channel.isalnum():
        # Slack's documented deep link into a channel by its ID (api.slack.com/docs/
        # deep-linking); a message permalink needs the workspace's domain, unknown here.
        link = f"https://slack.com/app_redirect?channel={quote(channel)}"
    posted = []
    for entry in doc["timeline"]:
        event = str(entry["event"])
        if event.startswith(("note posted: ", "note failed: ")):
            posted.append(
                {
                    "at": moment(entry["at"], now),
                    "slot": event.partition(": ")[2],
                    "ok": event.startswith("note posted"),
                    "error": entry.get("error"),
                }
            )
    return {"posted": posted, "channel": channel, "link": link, "thread_ts": ts}


def incident_page(doc: Doc, now: float) -> dict[str, Any]:
    """Everything ``incident.html.j2`` shows."""
    failed = [s for s in doc["work"] if s["status"] == "failed"]
    return {
        "id": doc["id"],
        "provider": doc["provider"],
        "state": doc["state"],
        "opened": moment(doc["opened_at"], now),
        "recovered": moment(doc.get("recovered_at"), now),
        "resolved": moment(doc.get("resolved_at"), now),
        "last_success_before": moment(doc.get("last_success_before"), now),
        "playbooks": list(doc.get("playbooks") or []),
        "alerts": _alerts(doc, now),
        "alert_counts": alert_counts(doc),
        "truncated": truncated_alerts(doc),
        "timeline": _timeline(doc, now),
        "timeline_dropped": int(doc.get("timeline_dropped") or 0),
        "actions": _actions(doc, now),
        "notes": _notes(doc, now),
        "pending": [{"id": s["id"], "what": step_what(s)} for s in pending_work(doc)],
        "failed": [{"id": s["id"], "what": step_what(s)} for s in failed],
        "recovery": doc.get("recovery"),
        "verification": _verification(doc, now),
        "reverify": vr.retryable(doc),
        "evidence": evidence_section(doc, now, moment),
        "approvals": _approvals(doc, now),
    }


def _verification(doc: Doc, now: float) -> dict[str, Any] | None:
    """Verified recovery (docs/responder.md#verified-recovery) as the page shows it."""
    verification = doc.get("verification")
    if not verification:
        return None
    backfill = verification.get("backfill") or {}
    suite = verification.get("suite") or {}
    denied = verification.get("outcome") == "denied"  # the backfill never ran
    history = [
        {
            "attempt": earlier.get("attempt"),
            "finished": moment(earlier.get("finished_at"), now),
            "outcome": earlier.get("outcome"),
            "reason": earlier.get("reason"),
            "run_state": (earlier.get("backfill") or {}).get("state") or "not seen",
            "suite_result": _suite_result(earlier.get("suite") or {}),
            "dbt_result": _dbt_result(earlier.get("dbt_tests") or {}),
        }
        for earlier in verification.get("history") or []
    ]
    return {
        "dry_run": bool(verification.get("dry_run")),
        "steps": list(verification.get("steps") or []),
        "stage": verification.get("stage"),
        "outcome": verification.get("outcome"),
        "reason": verification.get("reason"),
        "run": "none" if denied else f"{backfill.get('dag_id')} / {backfill.get('dag_run_id')}",
        "run_state": "not triggered (denied)"
        if denied
        else backfill.get("state") or "not seen yet",
        "suite": suite.get("name"),
        "suite_result": _suite_result(suite),
        "suite_at": moment(suite.get("run_time"), now),
        "dbt": _dbt_tests(verification.get("dbt_tests"), now),
        "next_poll": moment(verification.get("next_poll_at"), now),
        "deadline": moment(verification.get("deadline"), now),
        "last_error": verification.get("last_error"),
        "history": history,
    }


def _suite_result(suite: Doc) -> str | None:
    return None if suite.get("success") is None else "passed" if suite["success"] else "failed"


def _dbt_tests(dbt: Doc | None, now: float) -> dict[str, Any] | None:
    """The dbt tests waited for (None: not waited for, or a record from before)."""
    if not dbt:
        return None
    at = moment(dbt.get("generated_at"), now)
    return {"select": dbt.get("select"), "result": _dbt_result(dbt), "at": at}


def _dbt_result(dbt: Doc) -> str | None:
    if dbt.get("generated_at") is None:
        return None
    if dbt.get("success") is None:
        return f"no test ran ({dbt.get('skipped')} skipped)"
    if dbt["success"]:
        warned = f", {dbt['warned']} warned" if dbt.get("warned") else ""
        return f"passed ({dbt['passed']} tests{warned})"
    return f"failed ({dbt_failure(dbt)})"


def _approvals(doc: Doc, now: float) -> list[dict[str, Any]]:
    """Steps that need (or needed) approval: waiting ones get the form, the others
    say who decided."""
    rows = []
    for step in approval_steps(doc):
        decided = step["decision"] or {}
        rows.append(
            {
                "id": step["id"],
                "what": step["what"],
                "phase": step["phase"],
                "waiting": step["status"] == "awaiting_approval",
                "status": step["status"].replace("_", " "),
                "requested": moment(step["requested_at"], now),
                "deadline": moment(step["deadline_at"], now),
                "on_timeout": step["on_timeout"],
                "decision": decided.get("decision"),
                "by": decided.get("by"),
                "via": decided.get("via"),
                "decided": moment(decided.get("at"), now),
            }
        )
    return rows


def incidents_page(docs: list[Doc], now: float) -> list[dict[str, Any]]:
    """The rows of ``incidents.html.j2``, newest first."""
    rows = []
    for doc in sorted(docs, key=lambda d: d["opened_at"], reverse=True):
        alerts = doc["alerts"].values()
        rows.append(
            {
                "id": doc["id"],
                "provider": doc["provider"],
                "state": doc["state"],
                "opened": moment(doc["opened_at"], now),
                "resolved": moment(doc.get("resolved_at"), now),
                "alerts": sorted({a["alertname"] for a in alerts}),
                "firing": alert_counts(doc)["firing"],
                "pending": len(pending_work(doc)),
            }
        )
    return rows
