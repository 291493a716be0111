"""``record_success``: what an ingestion task calls when a load succeeds.

From an Airflow task (or any Python code with the exporter's settings)::

    from feedguard.core.record import record_success_from_config

    record_success_from_config("EIA", "electricity_rto_region_data")

From a shell::

    feedguard-exporter record-success --provider EIA --dataset electricity_rto_region_data
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import redis
from pydantic import Field

from .catalog import Catalog
from .keys import last_success_key
from .schema import NO_ENV, ServiceSettings
from .service_config import load_service_config
from .settings import RedisSettings

# The settings file used when none is passed: lets a worker's environment point
# every task at the exporter's configuration without code changes.
CONFIG_ENV = "FEEDGUARD_EXPORTER_CONFIG"

# Never move a dataset's last success backwards: a backfill finishing after a
# live load must not make fresh data look stale.  Compare-and-set in one step
# so two tasks finishing together cannot interleave.  Every KEYS[i] gets ARGV[1]
# unless it holds a newer time; the answer is 1 (moved forward) or 0 per key.
# The exporter's OpenLineage intake writes with the same script.
SET_IF_NEWER = """
local moved = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current and tonumber(current) and tonumber(current) >= tonumber(ARGV[1]) then
    moved[i] = 0
  else
    redis.call('SET', key, ARGV[1])
    moved[i] = 1
  end
end
return moved
"""


class RecordConfig(ServiceSettings):
    """What recording a success needs: the catalog and Redis, nothing else.

    Read from the exporter's settings file; the file's other sections (Airflow,
    probes, dbt, ...) are not this loader's to judge, so a pipeline worker never
    needs the Airflow password or any other unrelated secret.  Nor are the
    ``FEEDGUARD_*`` variables of the exporter's other settings: the exporter
    judges those.
    """

    catalog_file: str = "config/external_providers.yml"
    catalog: Annotated[Catalog | None, NO_ENV] = None
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @property
    def providers(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("configuration was built without a catalog")
        return self.catalog


def load_record_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> RecordConfig:
    """The catalog and Redis settings of ``path`` (an exporter settings file) or the defaults."""
    return load_service_config(
        RecordConfig,
        path,
        environ,
        lambda config: [config.redis.read_password],
        keys=frozenset(RecordConfig.model_fields),
    )


# A task's clock may run a little ahead of the one that checks freshness.
MAX_CLOCK_SKEW_SECONDS = 300.0


def check_load_time(at: float | None, now: float) -> float:
    """The epoch seconds to record, or ValueError when ``at`` cannot be a load time."""
    if at is None:
        return now
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ValueError(f"--at must be epoch seconds, got {at!r}")
    stamp = float(at)
    if not math.isfinite(stamp) or stamp <= 0:
        raise ValueError(f"--at must be positive epoch seconds, got {at!r}")
    if stamp > now + MAX_CLOCK_SKEW_SECONDS:
        raise ValueError(
            f"--at {stamp:.0f} is {stamp - now:.0f}s in the future; a load cannot have "
            f"succeeded later than now (allowed clock skew {MAX_CLOCK_SKEW_SECONDS:.0f}s)"
        )
    return stamp


def record_success(
    client: redis.Redis,
    catalog: Catalog,
    provider: str,
    dataset: str,
    at: float | None = None,
    *,
    now: float | None = None,
) -> bool:
    """Store the time of a successful load; True when it moved the value forward.

    Raises ValueError, naming the problem, for a provider or dataset not in the
    catalog or a timestamp that cannot be a load time.  Nothing is written then.
    A provider the allowlist has disabled for now is accepted: its loads are
    still facts, and its freshness is right again when it is re-enabled.
    """
    catalog.require(provider, dataset, enabled=False)
    stamp = check_load_time(at, time.time() if now is None else now)
    moved = client.eval(SET_IF_NEWER, 1, last_success_key(provider, dataset), repr(stamp))
    return bool(moved[0])


def sync_client(config: RecordConfig) -> redis.Redis:
    """A blocking Redis client for one-off writes (the CLI, Airflow tasks)."""
    return redis.Redis.from_url(config.redis.url, **config.redis.client_options())


def record_success_from_config(
    provider: str,
    dataset: str,
    at: float | None = None,
    config_path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """``record_success`` with the exporter's settings file; for Airflow tasks.

    Settings come from ``config_path``, else the file named by
    ``$FEEDGUARD_EXPORTER_CONFIG``, else the embedded defaults; ``FEEDGUARD_*``
    variables override them (``FEEDGUARD_REDIS_URL``, ``FEEDGUARD_CATALOG_FILE``).
    Only the file's ``catalog_file``/``catalog`` and ``redis`` sections are read.
    Raises ``ConfigError`` for bad settings, ``ValueError`` for a provider,
    dataset or time the catalog refuses, ``redis.RedisError`` when Redis fails;
    nothing is written in the first two cases.
    """
    environ = os.environ if environ is None else environ
    path = config_path or environ.get(CONFIG_ENV) or None
    config = load_record_config(path, environ)
    client = sync_client(config)
    try:
        return record_success(client, config.providers, provider, dataset, at)
    finally:
        client.close()
