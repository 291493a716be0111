"""Check every answer a responder test reads against responder/openapi.yml.

``start_responder`` opens its session with ``response_class=CheckedResponse``:
reading a body (``.read()``, ``.json()``, ``.text()``) validates status, content
type, headers and body against the operation the request matched, with
openapi-core; an answer the document does not describe fails the test.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import ClientResponse
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from feedguard.responder.openapi import load_spec

# The document's server: requests are matched on their path only.
SERVER = "http://127.0.0.1:9817"


@functools.cache
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(load_spec())


class _Request:
    def __init__(self, method: str, path: str, query: dict[str, str], headers: Any) -> None:
        self.host_url = SERVER
        self.path = path
        self.method = method.lower()
        self.body: bytes | None = None
        self.content_type = str(headers.get("Content-Type", "application/json")).lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(list(headers.items()))
        )


class _Response:
    def __init__(self, status: int, headers: Any, data: bytes) -> None:
        self.status_code = status
        self.data = data
        self.headers = Headers(list(headers.items()))
        self.content_type = str(headers.get("Content-Type", "")).lower()


def check_answer(
    method: str, path: str, query: dict[str, str], request_headers: Any, response: Any, body: bytes
) -> None:
    """Raise AssertionError naming the request when the answer breaks the document."""
    request = _Request(method, path, query, request_headers)
    answer = _Response(response.status, response.headers, body)
    try:
        openapi().validate_response(request, answer)
    except Exception as exc:
        detail = getattr(exc, "__cause__", None) or exc
        raise AssertionError(
            f"{method} {path} -> {response.status}: answer breaks responder/openapi.yml: "
            f"{type(exc).__name__}: {detail}; body: {body[:500]!r}"
        ) from exc


class CheckedResponse(ClientResponse):
    """A client response that validates itself against the OpenAPI document when read."""

    _checked = False

    async def read(self) -> bytes:
        body = await super().read()
        if not self._checked and self.method != "HEAD":
            self._checked = True
            check_answer(
                self.method,
                self.url.path,
                dict(self.url.query),
                self.request_info.headers,
                self,
                body,
            )
        return body
