"""An incident's note slots: which notes are due (the initial one, the hourly
updates, approval requests, the resolution, a verification's reply), and what a
post attempt and its result write on the document.

Pure, like ``transitions``: ``note_schedule`` posts the notes and writes these
changes through the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import incidents as inc
from . import verified_recovery as vr
from .plugins import NoteKind

Doc = dict[str, Any]


def due_notes(doc: Doc, now: float, update_interval: float) -> list[tuple[NoteKind, int]]:
    """The notes to post now: the initial one, the current hour's update (after a
    pause only that one), the resolution."""
    slots = set(doc.get("note_slots") or ())
    due: list[tuple[NoteKind, int]] = []
    if "initial:0" not in slots:
        due.append(("initial", 0))
    for item in inc.awaiting_approval(doc):
        slot = item["approval_request"]["slot"]
        if f"approval:{slot}" not in slots:
            due.append(("approval", slot))
    verification = doc.get("verification")
    if doc["state"] == inc.RESOLVED or verification is not None:
        # Verifying: the resolution note says "backfill triggered"; its outcome follows
        # as a reply in the thread, and no hourly update any more.
        if "resolution:0" not in slots:
            due.append(("resolution", 0))
        slot = vr.note_slot(doc)  # a retry's outcome is a reply of its own
        if vr.reply_due(doc, slot) and f"verification:{slot}" not in slots:
            due.append(("verification", slot))
        return due
    slot = int((now - doc["opened_at"]) // update_interval) if update_interval > 0 else 0
    if slot >= 1 and f"update:{slot}" not in slots:
        due.append(("update", slot))
    return due


def note_attempt(doc: Doc, key: str, owner: str, at: float, state: str = "sending") -> None:
    """A replica posts a note (``at``: wall-clock epoch, as Slack's ``ts``): ``sending``
    (a request may be out), or ``waiting`` (Slack refused the last one with a 429).

    Written before each request: if the replica dies before ``note_done``, the next
    one knows whether the note may be in Slack already."""
    doc.setdefault("note_attempts", {})[key] = {"owner": owner, "at": at, "state": state}


def note_done(
    doc: Doc, key: str, merged: Mapping[str, Any] | None, error: str | None, now: float
) -> None:
    """A note slot is taken: posted (``merged``: what the notifier keeps), failed
    (``error``), or posted by another replica (neither)."""
    if key not in doc["note_slots"]:
        doc["note_slots"].append(key)
    doc.get("note_attempts", {}).pop(key, None)
    kind = key.partition(":")[0]
    if merged is not None:
        doc["notes"].update(merged)
        inc.add_event(doc, now, f"note posted: {key}")
    elif error is not None:
        inc.add_event(doc, now, f"note failed: {key}", error=error)
    if kind in ("resolution", "verification") and doc["state"] == inc.RESOLVED:
        doc["live"] = not inc.final_notes_posted(doc)
