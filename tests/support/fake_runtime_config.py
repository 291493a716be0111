"""A local stand-in for the platform's runtime-config admin API (runbook 3.3, 5.5).

``GET/POST /runtime-config/v1/features/{name}`` with ``Authorization: Bearer``.
A feature state is ``{"name", "enabled", "configuration"}``.  Errors are JSON
``{"error": <reason>, "detail": <what is wrong>}``: 401 for a missing or wrong
token, 404 for a feature the API does not know, 422 for a body that is not a
feature state, 405 or 501 for a GET when reads are not served (``serve_get``).
Every request is recorded for the test to assert on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .fake_http import (
    Arrival,
    record_arrivals,
    record_client_ports,
    retry_after_headers,
    serve_app,
)


@dataclass(frozen=True)
class Seen:
    method: str
    feature: str
    authorization: str | None
    body: Any


@dataclass
class FakeRuntimeConfig:
    token: str = "runtime-token"
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    serve_get: bool = True  # False: GET answers ``get_refusal``
    # 405: an API that only takes POSTs; 501: one that does not implement reads.
    get_refusal: int = 405
    fail_next: list[int] = field(default_factory=list)
    # The Retry-After an injected 429 or 503 carries (e.g. "1", or an HTTP-date).
    retry_after: str | None = None
    # Method, path and arrival time of every request, in order.
    arrivals: list[Arrival] = field(default_factory=list)
    # Set: a POST changes the state, then its answer waits for this event (a
    # client that dies after the change and before it heard the answer).
    hold_answers: asyncio.Event | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    # The client port of every request, in order (one port: one TCP connection).
    client_ports: list[int] = field(default_factory=list)

    @classmethod
    def with_features(cls, names: Iterable[str], **kwargs: Any) -> FakeRuntimeConfig:
        fake = cls(**kwargs)
        for name in names:
            fake.features[name] = {"enabled": False, "configuration": {}}
        return fake

    def posts(self, feature: str | None = None) -> list[Any]:
        return [
            r.body
            for r in self.requests
            if r.method == "POST" and (feature is None or r.feature == feature)
        ]

    def state(self, feature: str) -> dict[str, Any]:
        return {"name": feature, **self.features[feature]}

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[record_arrivals(self.arrivals), record_client_ports(self.client_ports)]
        )
        path = "/runtime-config/v1/features/{name}"
        app.router.add_get(path, self._get)
        app.router.add_post(path, self._post)
        return app

    def serve(self) -> AbstractAsyncContextManager[str]:
        """Serve on a free loopback port; yields the base URL."""
        return serve_app(self.app())

    @staticmethod
    def _error(
        status: int, error: str, detail: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"error": error, "detail": detail}
        return web.json_response(body, status=status, headers=headers)

    def _check(self, request: web.Request, name: str) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "unauthorized", "missing or invalid bearer token")
        if self.fail_next:
            code = self.fail_next.pop(0)
            headers = retry_after_headers(code, self.retry_after)
            return self._error(code, "injected", f"injected failure {code}", headers)
        if name not in self.features:
            return self._error(404, "not_found", f"unknown feature {name!r}")
        return None

    async def _get(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests.append(Seen("GET", name, request.headers.get("Authorization"), None))
        if not self.serve_get:
            reason = {405: "method_not_allowed", 501: "not_implemented"}[self.get_refusal]
            return self._error(self.get_refusal, reason, "GET is not supported")
        problem = self._check(request, name)
        if problem is not None:
            return problem
        return web.json_response(self.state(name))

    async def _post(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(Seen("POST", name, request.headers.get("Authorization"), body))
        problem = self._check(request, name)
        if problem is not None:
            return problem
        errors = []
        if not isinstance(body, dict):
            errors.append("body must be a JSON object")
        else:
            if not isinstance(body.get("enabled"), bool):
                errors.append("enabled: must be true or false")
            if "configuration" in body and not isinstance(body["configuration"], dict):
                errors.append("configuration: must be an object")
            extra = sorted(set(body) - {"enabled", "configuration"})
            if extra:
                errors.append(f"unknown fields: {extra}")
        if errors:
            return self._error(422, "invalid", errors)
        assert isinstance(body, dict)
        self.features[name] = {
            "enabled": body["enabled"],
            "configuration": dict(body.get("configuration") or {}),
        }
        if self.hold_answers is not None:
            self.held.set()
            await self.hold_answers.wait()
        return web.json_response(self.state(name))
