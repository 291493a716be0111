"""Cross-site request forgery defence for the pages' forms.

Double submit: the page sets a random ``feedguard_csrf`` cookie (SameSite=Strict,
HttpOnly) and puts the same value in the form; a post must carry both, equal.
A cross-site page can neither read the cookie nor make the browser send it, and
a post whose ``Origin`` is another site is refused outright.  The form also
needs the features token, which the operator types.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

COOKIE = "feedguard_csrf"


def token_for(request: web.Request, response: web.StreamResponse) -> str:
    """The page's CSRF token: the browser's cookie when it has a sound one, else a new one."""
    current = request.cookies.get(COOKIE, "")
    if len(current) >= 32:
        return current
    token = secrets.token_urlsafe(32)
    response.set_cookie(
        COOKIE,
        token,
        path="/incidents",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return token


def refused(request: web.Request, form_token: str) -> str | None:
    """Why a form post is refused, or None when its CSRF checks pass."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return "cross-origin form post refused"
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or not form_token:
        return "missing CSRF token: reload the page and submit again"
    if not hmac.compare_digest(cookie.encode(), form_token.encode()):
        return "CSRF token does not match: reload the page and submit again"
    return None
