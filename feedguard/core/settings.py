"""Settings both services (and record-success) share: Redis and logging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .log import LogFormat
from .schema import check_positive, check_redis_url, field, read_secret


@dataclass(frozen=True)
class RedisSettings:
    url: str = field("redis://127.0.0.1:6379/0", check=check_redis_url)
    password: str | None = field(None, doc="prefer FEEDGUARD_REDIS_PASSWORD or password_file")
    password_file: str | None = None
    socket_timeout_seconds: float = field(2.0, check=check_positive)

    def read_password(self) -> str | None:
        return read_secret(self.password, self.password_file, "redis password")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Redis.from_url``, sync or asyncio, shared by every client."""
        return {
            "password": self.read_password(),
            "socket_timeout": self.socket_timeout_seconds,
            "socket_connect_timeout": self.socket_timeout_seconds,
        }


@dataclass(frozen=True)
class LogSettings:
    level: str = field(
        "info",
        check=lambda v: (
            None
            if v.lower() in ("debug", "info", "warning", "error")
            else f"expected debug, info, warning or error, got {v!r}"
        ),
    )
    format: LogFormat = "auto"
