"""HTTP intake shared by the responder's webhook and the exporter's lineage endpoint.

Both read one JSON document per POST under a body limit and refuse, with the
same answers, what they cannot take: 401 (with ``WWW-Authenticate``), 413,
400.  A refused request changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from .log import get_logger

log = get_logger(__name__)


class InvalidJSON(ValueError):
    """The body is not JSON a handler may see; the text says why."""


def decode_json(body: bytes) -> Any:
    """Decode a request body, refusing what must never reach a handler or the store.

    orjson parses without Python recursion and refuses, while parsing: nesting
    deeper than 1024 levels, numbers beyond a double (a 4,300-digit integer),
    invalid UTF-8, lone surrogates (raw or escaped, ``"\\ud800"``), NaN and
    Infinity.  So every string a handler sees encodes as UTF-8.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"invalid JSON: {exc}") from None


class Refused(Exception):
    """A request the endpoint will not take: the HTTP status, a message and a metric result."""

    def __init__(self, status: int, message: str, result: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.result = result


def unauthorized() -> Refused:
    return Refused(401, "missing or wrong credentials", "unauthorized")


def _too_large(limit: int) -> Refused:
    return Refused(413, f"body larger than {limit} bytes", "too_large")


async def read_json(request: web.Request, limit: int, within_seconds: float | None = None) -> Any:
    """The decoded JSON body, or Refused: 413 over ``limit`` bytes, 408 not all received
    ``within_seconds`` (answer it with ``send_refusal``, which closes the connection),
    400 not JSON or the client gone mid-body (logged as one line, not a traceback)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        if request.content.is_eof():
            # All of it has arrived (the usual case, one segment): no wait to bound,
            # and no timer to arm and cancel, which cost ~4 % of a webhook's CPU.
            body = await request.read()
        else:
            async with asyncio.timeout(within_seconds):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except TimeoutError:
        message = f"body not received within {within_seconds:g} s"
        raise Refused(408, message, "timeout") from None
    except ConnectionError as exc:
        # The client closed the connection mid-body: nobody reads an answer.
        log.info(
            "client disconnected", path=request.path, peer=request.remote, error=type(exc).__name__
        )
        raise Refused(400, "client disconnected", "disconnected") from None
    if len(body) > limit:
        raise _too_large(limit)
    try:
        return decode_json(body)
    except InvalidJSON as exc:
        raise Refused(400, str(exc), "invalid") from None


async def send_refusal(request: web.Request, response: web.Response) -> web.Response:
    """Answer a refusal; after a 408 close the connection, so a slow sender is cut off
    (aiohttp would otherwise keep reading the rest of the body for its lingering time)."""
    if response.status != 408:
        return response
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()  # flushes the answer first
    return response


def refusal_response(refused: Refused) -> web.Response:
    """The JSON error answer: ``{"error": message}``; 401 names the Bearer scheme."""
    headers = {"WWW-Authenticate": 'Bearer realm="feedguard"'} if refused.status == 401 else None
    return web.json_response({"error": refused.message}, status=refused.status, headers=headers)
