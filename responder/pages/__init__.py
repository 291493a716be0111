"""The incident pages: server-rendered HTML (Jinja2, autoescaped), no JavaScript.

``GET /incidents`` and ``GET /incidents/{id}`` read the same store as the API;
``POST /incidents/{id}/retry`` is the page's retry form (features token typed
by the operator, CSRF double submit, see csrf.py), and
``POST /incidents/{id}/steps/{step}/approve|deny`` its approval form (an
approver's token typed by the operator; the decision is recorded under the
approver's name).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import jinja2
from aiohttp import web

from feedguard.core.auth import check_bearer

from .. import appkeys
from ..approval import DECISIONS, Decision
from ..approval_api import approver, for_decision
from ..store import StoreUnavailable
from . import csrf, views

HERE = Path(__file__).parent
PAGES: web.AppKey[jinja2.Environment] = web.AppKey("pages")
# /static/<name>: (body, content type), read once at start.
STATIC: web.AppKey[dict[str, tuple[bytes, str]]] = web.AppKey("static")
_STATIC_TYPES = {".css": "text/css", ".svg": "image/svg+xml"}
FEATURES_TOKEN_KEY: web.AppKey[str | None] = web.AppKey("pages_features_token")

HTML = "text/html"


def environment() -> jinja2.Environment:
    # autoescape everywhere: labels and annotations come from outside and must render inert.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _page(
    request: web.Request, template: str, status: int = 200, **context: object
) -> web.Response:
    text = request.app[PAGES].get_template(template).render(**context)
    return web.Response(text=text, status=status, content_type=HTML, charset="utf-8")


def _message(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return _page(request, "message.html.j2", status, title=title, message=message)


async def incidents(request: web.Request) -> web.Response:
    app = request.app
    try:
        docs = await app[appkeys.STORE].list("incident")
    except StoreUnavailable as exc:
        return _message(request, 503, "Store unavailable", f"state store unavailable: {exc}")
    rows = views.incidents_page(docs, app[appkeys.CLOCK]())
    return _page(request, "incidents.html.j2", incidents=rows)


async def incident(request: web.Request) -> web.Response:
    app = request.app
    ident = request.match_info["id"]
    try:
        doc = await app[appkeys.STORE].get("incident", ident)
    except StoreUnavailable as exc:
        return _message(request, 503, "Store unavailable", f"state store unavailable: {exc}")
    if doc is None:
        return _message(request, 404, "No such incident", f"no incident {ident!r}")
    response = web.Response(content_type=HTML, charset="utf-8")
    token = csrf.token_for(request, response)
    response.text = (
        app[PAGES]
        .get_template("incident.html.j2")
        .render(
            incident=views.incident_page(doc, app[appkeys.CLOCK]()),
            csrf_token=token,
            retried=request.query.get("retried") == "1",
            retry_enabled=app[FEATURES_TOKEN_KEY] is not None,
            approvals_enabled=bool(app[appkeys.APPROVERS]),
            decided=request.query.get("decided"),
        )
    )
    # The page shows live state: never serve it from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


async def _form(
    request: web.Request, which: str
) -> tuple[Mapping[str, object], web.Response | None]:
    """The posted form, or the answer refusing it (not a form: 400; CSRF: 403)."""
    if request.content_type != "application/x-www-form-urlencoded":
        return {}, _message(
            request, 400, "Not a form", f"expected the incident page's {which} form"
        )
    form = await request.post()
    why = csrf.refused(request, str(form.get("csrf_token", "")))
    return form, (None if why is None else _message(request, 403, "Refused", why))


async def retry(request: web.Request) -> web.StreamResponse:
    app = request.app
    ident = request.match_info["id"]
    form, refused = await _form(request, "retry")
    if refused is not None:
        return refused
    expected = app[FEATURES_TOKEN_KEY]
    if expected is None:
        return _message(request, 503, "Retry disabled", "set features.token to allow retries")
    if not check_bearer(f"Bearer {form.get('token', '')}", expected):
        return _message(request, 401, "Wrong token", "the features token is wrong")
    try:
        found = await app[appkeys.ENGINE].retry(ident)
    except StoreUnavailable as exc:
        return _message(request, 503, "Store unavailable", f"state store unavailable: {exc}")
    if not found:
        return _message(request, 404, "No such incident", f"no incident {ident!r}")
    raise web.HTTPSeeOther(f"/incidents/{ident}?retried=1")


async def decide(request: web.Request, decision: Decision) -> web.StreamResponse:
    app = request.app
    ident, step = request.match_info["id"], request.match_info["step"]
    form, refused = await _form(request, "approval")
    if refused is not None:
        return refused
    tokens = app[appkeys.APPROVERS]
    if not tokens:
        return _message(
            request, 503, "Approvals disabled", "set approvals.approvers or features.token"
        )
    who = approver(tokens, f"Bearer {form.get('token', '')}")
    if who is None:
        return _message(request, 401, "Wrong token", "that is no approver's token")
    try:
        result = await app[appkeys.ENGINE].decide(ident, step, decision, who, "page")
    except StoreUnavailable as exc:
        return _message(request, 503, "Store unavailable", f"state store unavailable: {exc}")
    if not result.ok:
        title = "Not found" if result.status == 404 else "Already decided"
        return _message(request, result.status, title, str(result.error))
    raise web.HTTPSeeOther(f"/incidents/{quote(ident, safe='')}?decided={quote(step, safe='')}")


async def static(request: web.Request) -> web.Response:
    found = request.app[STATIC].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(text="no such file")
    body, content_type = found
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "max-age=3600"},
    )


def setup_pages(app: web.Application, features_token: str | None) -> None:
    app[PAGES] = environment()
    app[STATIC] = {
        path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
        for path in (HERE / "static").iterdir()
        if path.suffix in _STATIC_TYPES
    }
    app[FEATURES_TOKEN_KEY] = features_token
    app.router.add_get("/incidents", incidents)
    app.router.add_get("/incidents/{id}", incident)
    app.router.add_post("/incidents/{id}/retry", retry)
    for decision in DECISIONS:
        path = f"/incidents/{{id}}/steps/{{step}}/{decision}"
        app.router.add_post(path, for_decision(decide, decision))
    app.router.add_get("/static/{name}", static)
