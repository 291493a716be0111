"""Authorization header checks, in constant time."""

from __future__ import annotations

import base64
import hmac


def _same(given: str, expected: str) -> bool:
    # aiohttp decodes header bytes that are not UTF-8 as lone surrogates
    # (surrogateescape): compare the bytes as sent, never fail on them.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def check_bearer(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and _same(value.strip(), token)


def check_basic(header: str | None, username: str, password: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
        return False
    user, sep, secret = decoded.partition(":")
    # Both compared every time, so timing says nothing about which one was wrong.
    user_ok = _same(user, username)
    secret_ok = _same(secret, password)
    return bool(sep) and user_ok and secret_ok
