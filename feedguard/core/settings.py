"""Settings both services (and record-success) share: Redis and logging."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .log import LogFormat
from .schema import ConfigModel, PositiveFloat, RedisUrl, Secret, check, read_secret


class RedisSettings(ConfigModel):
    url: RedisUrl = "redis://127.0.0.1:6379/0"
    password: Secret = Field(None, description="prefer FEEDGUARD_REDIS_PASSWORD or password_file")
    password_file: str | None = None
    socket_timeout_seconds: PositiveFloat = 2.0

    def read_password(self) -> str | None:
        return read_secret(self.password, self.password_file, "redis password")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Redis.from_url``, sync or asyncio, shared by every client."""
        return {
            "password": self.read_password(),
            "socket_timeout": self.socket_timeout_seconds,
            "socket_connect_timeout": self.socket_timeout_seconds,
        }


def _check_level(value: str) -> str | None:
    if value.lower() in ("debug", "info", "warning", "error"):
        return None
    return f"expected debug, info, warning or error, got {value!r}"


class LogSettings(ConfigModel):
    level: Annotated[str, check(_check_level)] = "info"
    format: LogFormat = "auto"
