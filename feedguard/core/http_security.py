"""Security headers on every HTTP answer of a service (the seed's aurum-api-security).

``install_security_headers(app)`` hooks ``on_response_prepare``, so handler
answers, raised ``HTTPException``\\ s (404, 405) and error pages all carry them.
The policy allows nothing but the service's own origin: the incident pages use
no inline script or style, so no ``'unsafe-inline'`` is needed.
"""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The seed's HSTS_MAX_AGE: one year.
HSTS = "max-age=31536000; includeSubDomains"

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Links to Slack or Grafana leave without the incident's URL. (Not no-referrer:
    # browsers then send "Origin: null" on the pages' own form posts.)
    "Referrer-Policy": "same-origin",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # HSTS means something only over TLS (RFC 6797 section 7.2: ignored over plain HTTP).
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)


def install_security_headers(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
