"""Deciding a step that awaits approval over HTTP: the token-protected API (which
``feedguard-responder approve|deny`` calls) and the check of an approver's token
shared with the incident page's form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from aiohttp import web

from feedguard.core.auth import check_bearer

from . import appkeys
from .approval import Decided, Decision
from .isotimes import with_iso_times
from .payload import storable
from .store import StoreUnavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def approver(tokens: Mapping[str, str], header: str | None) -> str | None:
    """The name of the approver whose token the Authorization header carries."""
    found = None
    for token, name in tokens.items():
        # Every token is compared (in constant time): timing says nothing of which matched.
        if check_bearer(header, token) and found is None:
            found = name
    return found


def decided_body(incident_id: str, step: str, result: Decided) -> dict[str, Any]:
    """The answer to a decision: what was decided, or why not (and what stands)."""
    standing = (result.step or {}).get("decision")
    if result.ok:
        body = {"id": incident_id, "step": step, **cast(dict[str, Any], standing)}
    else:
        body = {
            "error": result.error,
            "id": incident_id,
            "step": step,
            "status": (result.step or {}).get("status"),
            "decision": standing,
        }
    return cast(dict[str, Any], with_iso_times(body))


def for_decision(
    fn: Callable[[web.Request, Decision], Awaitable[web.StreamResponse]], decision: Decision
) -> Handler:
    """A route's handler: ``fn`` with the decision its path names (…/approve, …/deny)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await fn(request, decision)

    return handler


async def decide_step(request: web.Request, decision: Decision) -> web.Response:
    """POST /api/v1/incidents/{id}/steps/{step}/approve (or deny)."""
    app = request.app
    tokens = app[appkeys.APPROVERS]
    if not tokens:
        return web.json_response(
            {"error": "approvals are disabled: set approvals.approvers or features.token"},
            status=503,
        )
    who = approver(tokens, request.headers.get("Authorization"))
    if who is None:
        return web.json_response(
            {"error": "missing or wrong bearer token (an approver's, see approvals.approvers)"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="feedguard"'},
        )
    ident, step = request.match_info["id"], request.match_info["step"]
    if not (storable(ident) and storable(step)):
        return web.json_response({"error": f"no incident {ident!r}"}, status=404)
    try:
        result = await app[appkeys.ENGINE].decide(ident, step, decision, who, "api")
    except StoreUnavailable as exc:
        return web.json_response({"error": f"state store unavailable: {exc}"}, status=503)
    return web.json_response(decided_body(ident, step, result), status=result.status)
