"""Fuzz the webhook with 10,000 seeded mutated bodies per store, valid requests alongside.

Proof for the intake: with the store up no answer is a 5xx, no mutated body
executes an action (their alerts are for a provider outside the catalog or
without one, so even the ones that stay valid are only recorded and ignored),
every valid request sent concurrently is accepted and acted on exactly once,
and /readyz is ok afterwards.  ``FEEDGUARD_FUZZ_BODIES`` and
``FEEDGUARD_FUZZ_SEED`` change the count and the seed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
from pathlib import Path
from typing import Any

from .conftest import make_catalog
from .support.mutator import Mutator
from .support.raw_http import RawConnection
from .support.responder import (
    BEARER,
    T0,
    Responder,
    alert,
    counting_actions,
    notification,
    responder_config,
    start_responder,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})
BODIES = int(os.environ.get("FEEDGUARD_FUZZ_BODIES", "10000"))
SEED = int(os.environ.get("FEEDGUARD_FUZZ_SEED", "20261201"))
CONNECTIONS = 8
VALID = 40
LIMIT = 256 * 1024


async def _fuzz(r: Responder, mutator: Mutator, count: int) -> collections.Counter[str]:
    statuses: collections.Counter[str] = collections.Counter()
    good = b"Bearer " + BEARER.encode()
    bodies = iter(range(count))
    failures: list[str] = []

    async def worker() -> None:
        conn = RawConnection("127.0.0.1", r.server.port or 0)
        try:
            for _ in bodies:
                kinds, body = mutator.body()
                auth = mutator.authorization(good)
                headers = [(b"Content-Type", b"application/json")]
                if auth is not None:
                    headers.append((b"Authorization", auth))
                try:
                    answer = await conn.request("POST", "/webhook/alertmanager", body, headers)
                except ConnectionError:
                    # Over the limit the server answers 413 without reading the body and
                    # may close while the client still writes it: a refusal too.
                    if len(body) <= LIMIT:
                        raise
                    statuses["413/reset"] += 1
                    continue
                statuses[str(answer.status)] += 1
                if answer.status >= 500:
                    failures.append(f"{answer.status} after {kinds}: {body[:200]!r}")
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    assert not failures, failures[:5]
    return statuses


async def _valid(r: Responder) -> list[int]:
    """Valid notifications for a catalog provider, sent while the fuzz runs."""
    statuses = []
    for n in range(VALID):
        response = await r.post(notification([alert("ISO-NE", dataset=f"d{n}", starts_at=T0)]))
        statuses.append(response.status)
        await asyncio.sleep(0)
    return statuses


async def test_fuzzed_bodies_never_5xx(tmp_path: Path, store_options: dict[str, Any]) -> None:
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        webhook={"max_body_bytes": LIMIT},
        **store_options,
    )
    acts = counting_actions()
    store_kind = store_options["store"]
    mutator = Mutator(SEED + (store_kind == "redis"), T0)
    async with start_responder(config, actions=acts) as r:
        started = time.perf_counter()
        statuses, valid = await asyncio.gather(_fuzz(r, mutator, BODIES), _valid(r))
        sent = time.perf_counter()
        await r.settle()
        print(f"sent in {sent - started:.1f}s, settled in {time.perf_counter() - sent:.1f}s")
        print(f"fuzz {store_kind}: {BODIES} bodies, statuses {dict(sorted(statuses.items()))}")
        assert sum(statuses.values()) == BODIES
        assert valid == [200] * VALID
        # Refusals and accepted-but-ignored bodies both occurred: the fuzz reached past parsing.
        assert statuses["400"] > 0
        assert statuses["200"] > 0
        assert statuses["401"] > 0
        assert not [status for status in statuses if status.startswith("5")]

        incidents = await r.incidents()
        assert [i["provider"] for i in incidents] == ["ISO-NE"]
        incident = await r.incident("ISO-NE")
        assert len(incident["alerts"]) == VALID
        for action in ("throttle_api", "pause_dags"):
            assert [who for who, _ in acts[action].applied] == [incident["id"]]
        assert not acts["trigger_backfill"].applied
        ignored = (await r.get_json("/api/v1/ignored"))["ignored"]
        assert ignored, "accepted fuzz bodies are ignored, not acted on"
        async with r.session.get(r.url + "/readyz") as ready:
            assert ready.status == 200, await ready.text()
        # After all that, a new valid notification still works.
        response = await r.post(notification([alert("ISO-NE", dataset="after")]))
        assert response.status == 200
        assert json.loads(await response.text())["new"] == 1
