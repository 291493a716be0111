"""The seed's API hardening on feedguard's own HTTP: rate limit, gzip, security headers.

``install_http_hardening(app, settings)`` is all a service calls.  The rate
limit answers 429 with ``Retry-After`` per client IP (the peer address: a
forwarded-for header is not trusted, anybody can send one); addresses in
``exempt_cidrs`` (Prometheus, Alertmanager, kubelet probes) and
``exempt_paths`` are never limited.  Responses of at least ``min_bytes`` are
gzipped when the client accepts gzip (``/metrics`` included).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Annotated, Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from pydantic import Field

from .http_security import install_security_headers
from .ratelimit import TokenBuckets
from .schema import ConfigModel, Items, PositiveFloat, PositiveInt, check

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _check_cidrs(values: Any) -> str | None:
    for index, value in enumerate(values):
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError as exc:
            return f"item {index}: {exc}"
    return None


class RateLimitSettings(ConfigModel):
    enabled: bool = True
    # The seed's defaults: 100 requests per 60 s, bursts of 20, per client IP.
    requests: PositiveInt = 100
    window_seconds: PositiveFloat = 60.0
    burst: PositiveInt = 20
    # Never limited: loopback and the seed's RATE_LIMIT_EXEMPT_IPS (cluster networks,
    # where Prometheus and Alertmanager scrape and post from).
    exempt_cidrs: Annotated[Items[str], check(_check_cidrs)] = (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "192.168.0.0/16",
    )
    # Liveness and readiness probes must never see a 429.
    exempt_paths: Items[str] = ("/healthz", "/readyz")

    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.exempt_cidrs)


class GzipSettings(ConfigModel):
    enabled: bool = True
    # The seed's COMPRESSION_MIN_SIZE; the level is zlib's default, the seed's 6.
    min_bytes: PositiveInt = 1024


class HttpSettings(ConfigModel):
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    gzip: GzipSettings = Field(default_factory=GzipSettings)


def _exempt(remote: str | None, networks: tuple[Network, ...]) -> bool:
    if remote is None:  # a Unix socket: local by construction
        return True
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in network for network in networks)


# Peers whose exemption is remembered at most (then forgotten all at once): parsing the
# address and matching the networks took ~5 % of a webhook request's CPU.
_EXEMPT_CACHE_SIZE = 1024


def rate_limit_middleware(
    settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic
) -> Any:
    buckets = TokenBuckets(settings.requests, settings.window_seconds, settings.burst)
    networks = settings.networks()
    paths = frozenset(settings.exempt_paths)
    exempt_peers: dict[str | None, bool] = {}

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        remote = request.remote
        exempt = exempt_peers.get(remote)
        if exempt is None:
            if len(exempt_peers) >= _EXEMPT_CACHE_SIZE:
                exempt_peers.clear()
            exempt = exempt_peers[remote] = _exempt(remote, networks)
        if exempt or request.path in paths:
            return await handler(request)
        verdict = buckets.take(remote or "", clock())
        if not verdict.allowed:
            return web.json_response(
                {
                    "error": "too many requests",
                    "limit": f"{settings.requests} per {settings.window_seconds:g}s, "
                    f"burst {settings.burst}",
                },
                status=429,
                headers={hdrs.RETRY_AFTER: str(verdict.retry_after)},
            )
        return await handler(request)

    return limit


def accepts_gzip(accept_encoding: str) -> bool:
    """True when ``gzip`` (or ``*``) is listed with a non-zero q (RFC 9110 12.5.3)."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def gzip_middleware(settings: GzipSettings) -> Any:
    @web.middleware
    async def compress(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if (
            isinstance(response, web.Response)
            and isinstance(response.body, bytes)
            and len(response.body) >= settings.min_bytes
            and hdrs.CONTENT_ENCODING not in response.headers
        ):
            response.headers.add(hdrs.VARY, hdrs.ACCEPT_ENCODING)
            if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
                # aiohttp compresses large bodies in an executor, off the event loop.
                response.enable_compression(web.ContentCoding.gzip)
        return response

    return compress


def install_http_hardening(
    app: web.Application, settings: HttpSettings, clock: Callable[[], float] = time.monotonic
) -> None:
    """Security headers on every answer; rate limit outermost, so a 429 costs nothing."""
    install_security_headers(app)
    if settings.rate_limit.enabled:
        app.middlewares.append(rate_limit_middleware(settings.rate_limit, clock))
    if settings.gzip.enabled:
        app.middlewares.append(gzip_middleware(settings.gzip))
