"""Blackbox-style HTTP health probes of providers (reused by the responder's recovery gate)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from .catalog import HealthProbe


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    duration_seconds: float
    status_code: int  # 0 when no HTTP answer arrived
    error: str | None = None


async def probe(
    session: aiohttp.ClientSession,
    spec: HealthProbe,
    budget_seconds: float | None = None,
    user_agent: str = "feedguard",
) -> ProbeResult:
    """Probe once; never raises for the provider's faults, only reports them."""
    limit = (
        spec.timeout_seconds
        if budget_seconds is None
        else min(budget_seconds, spec.timeout_seconds)
    )
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            async with session.request(
                spec.method,
                spec.url,
                allow_redirects=True,
                headers={"User-Agent": user_agent},
            ) as response:
                # Reading the body makes a provider that stalls mid-answer a failure.
                await response.read()
                status = response.status
    except TimeoutError:
        return ProbeResult(False, time.perf_counter() - started, 0, f"timeout after {limit:.2f}s")
    except (aiohttp.ClientError, OSError) as exc:
        return ProbeResult(False, time.perf_counter() - started, 0, f"{type(exc).__name__}: {exc}")
    duration = time.perf_counter() - started
    if status in spec.expected_status:
        return ProbeResult(True, duration, status)
    expected = ", ".join(str(s) for s in spec.expected_status)
    return ProbeResult(False, duration, status, f"HTTP {status}, expected {expected}")
