"""Asking Alertmanager (API v2) which alerts of a group still fire.

When Alertmanager truncated a group (``truncatedAlerts`` > 0, from the webhook's
``max_alerts``), the notifications did not show every alert: before recovery the
responder completes the picture with ``GET /api/v2/alerts`` filtered by the
group's labels.  Alertmanager leaves resolved alerts out of that answer
(api/v2/api.go ``alertFilter``: ``EndsAt`` before now), and by default includes
silenced and inhibited ones, which still fire.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp


class AlertmanagerUnavailable(Exception):
    """Alertmanager could not be asked; the text says why."""


def _matcher(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


async def firing_count(
    http: aiohttp.ClientSession, url: str, labels: Mapping[str, str], timeout_seconds: float
) -> int:
    """How many alerts with these labels Alertmanager holds as firing now."""
    params = [("filter", _matcher(name, value)) for name, value in sorted(labels.items())]
    try:
        async with http.get(
            url.rstrip("/") + "/api/v2/alerts",
            params=params,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        ) as response:
            if response.status != 200:
                raise AlertmanagerUnavailable(f"HTTP {response.status} from {url}")
            alerts = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise AlertmanagerUnavailable(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(alerts, list):
        raise AlertmanagerUnavailable("answer is not a list of alerts")
    return len(alerts)
