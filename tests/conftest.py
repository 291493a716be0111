"""Shared fixtures: real services on loopback, started once per session and stopped."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import structlog

from feedguard.core.catalog import Catalog, parse_catalog

from .support.airflow import AirflowInstance
from .support.airflow import airflow_instance as start_airflow
from .support.commands import Commands, both_services
from .support.services import Service, free_port, redis_server

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with redis_server(tmp_path_factory.mktemp("redis")) as service:
        yield service


@pytest.fixture(scope="session")
def airflow_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    """A real Airflow 3 (tests/support/airflow.py), started on first use, once per session."""
    with start_airflow(tmp_path_factory.mktemp("airflow")) as instance:
        yield instance


@pytest.fixture(scope="session")
def installed_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Commands]:
    """Both installed commands on the shipped config, with Redis unreachable (a closed port)."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with both_services(tmp_path_factory.mktemp("commands"), dead_redis) as started:
        yield started


@pytest.fixture
def redis_url(redis_service: Service) -> Iterator[str]:
    """A clean Redis database per test (FLUSHDB before and after)."""
    url = f"redis://127.0.0.1:{redis_service.port}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``responder_config`` keywords for each store in turn (a clean Redis for redis)."""
    if request.param == "redis":
        return {"store": "redis", "redis_url": request.getfixturevalue("redis_url")}
    return {"store": "sqlite"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session for tests that build an action's client themselves."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_catalog(providers: dict[str, dict[str, object]]) -> Catalog:
    """A catalog from {name: fields}; probes default to nothing listening."""
    return parse_catalog(
        {"providers": [{"name": name, **fields} for name, fields in providers.items()]},
        "<test>",
    )


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the next tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = (sys.excepthook, threading.excepthook)
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)
    structlog.configure(**config)
