"""First action after a start against later ones (issue 11: "first action as fast as the rest").

    .venv/bin/python -m bench.first_action [--rounds 3] [--later 9]

Each round starts a fresh interpreter (the costs measured are once per process:
a lazy import, validators built on first call, the first worker thread, the
first connection, a token), which serves local stand-ins of the Kubernetes API
and the runtime-config API (tests/support), opens the responder's actions with
``open_actions`` exactly as the responder does, and then times the ``apply`` of
``throttle_api`` (Kubernetes ConfigMap GET + PATCH) and of ``read_cache``
(runtime-config GET + POST): the first one, then ``--later`` more (each reverted
in between, untimed).  The stand-ins run in a process of their own and serve
their own first requests once beforehand, so what is measured is the
responder's side.  Two variants, interleaved per round:

- ``unwarmed``: the actions used straight away (what a responder did before the
  start-up checks);
- ``warmed``: the start-up checks (responder/clients.py) run first, as the
  responder runs them at start, and then the actions.

Printed: per action and variant, the first apply over the median of the later
ones (goal about 1x for ``warmed``), with the times in ms.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ACTIONS = ("throttle_api", "read_cache")


def _serve(conn: Connection) -> None:
    """The stand-ins, in a process of their own (spawned): their work never shares
    the measured process's interpreter lock or event loop."""
    asyncio.run(_serve_async(conn))


async def _serve_async(conn: Connection) -> None:
    from tests.support.fake_kubernetes import FakeKubernetes
    from tests.support.fake_runtime_config import FakeRuntimeConfig

    kube = FakeKubernetes()
    kube.grant("bench-token")
    kube.put("aurum-dev", "aurum-api-config", {"AURUM_API_RATE_LIMIT_RPS": "200"})
    runtime = FakeRuntimeConfig.with_features(["external_read_cache"])
    async with kube.serve() as kube_url, runtime.serve() as runtime_url:
        await _warm_stand_ins(kube_url, runtime_url, runtime.token)
        conn.send((kube_url, runtime_url, runtime.token))
        await asyncio.to_thread(conn.recv)  # until the measured process is done


async def _child(warm: bool, later: int) -> dict[str, Any]:
    from feedguard.core.catalog import Catalog
    from feedguard.responder.actions import open_actions
    from feedguard.responder.actions.settings import ActionsSettings
    from feedguard.responder.clients import ClientChecks, ClientWarmup
    from feedguard.responder.config import ClientSettings
    from feedguard.responder.metrics import Metrics
    from tests.support.action_context import context, provider

    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    server = spawn.Process(target=_serve, args=(theirs,), daemon=True)
    server.start()
    try:
        kube_url, runtime_url, runtime_token = ours.recv()
        settings = ActionsSettings.model_validate(
            {
                "kubernetes": {"host": kube_url, "token": "bench-token"},
                "runtime_config": {"base_url": runtime_url, "token": runtime_token},
            }
        )
        checks = ClientChecks()
        async with open_actions(settings, Catalog(providers=()), checks=checks) as actions:
            if warm:
                await ClientWarmup(
                    checks.used(ACTIONS), ClientSettings(), Metrics().client_ready
                ).run()
            times: dict[str, list[float]] = {}
            for name in ACTIONS:
                action = actions[name]
                ctx = context(provider())
                (target,) = action.targets(ctx)
                runs = []
                for _ in range(1 + later):
                    started = time.perf_counter()
                    outcome = await action.apply(ctx, target)
                    runs.append(time.perf_counter() - started)
                    await action.revert(ctx, target, outcome.previous)
                times[name] = runs
    finally:
        ours.send("stop")
        server.join(10)
    return times


async def _warm_stand_ins(kube_url: str, runtime_url: str, runtime_token: str) -> None:
    """The stand-ins' own first GET, PATCH and POST, served once beforehand, so that
    only the responder's side of a first action is measured (in both variants)."""
    import aiohttp

    configmap = f"{kube_url}/api/v1/namespaces/aurum-dev/configmaps/aurum-api-config"
    feature = f"{runtime_url}/runtime-config/v1/features/external_read_cache"
    kube_auth = {"Authorization": "Bearer bench-token"}
    runtime_auth = {"Authorization": f"Bearer {runtime_token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(configmap, headers=kube_auth) as response:
            response.raise_for_status()
        headers = {**kube_auth, "Content-Type": "application/merge-patch+json"}
        async with session.patch(configmap, data=b'{"data": {}}', headers=headers) as response:
            response.raise_for_status()
        async with session.get(feature, headers=runtime_auth) as response:
            state = await response.json()
        body = {"enabled": state["enabled"], "configuration": state["configuration"]}
        async with session.post(feature, json=body, headers=runtime_auth) as response:
            response.raise_for_status()


def _run_child(warm: bool, later: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "bench.first_action", "--child", "warmed" if warm else "unwarmed"]
    out = subprocess.run(
        [*argv, "--later", str(later)], capture_output=True, text=True, cwd=REPO, env=env
    )
    if out.returncode != 0:
        sys.exit(f"bench child failed:\n{out.stderr[-2000:]}")
    result: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.first_action")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--later", type=int, default=9)
    parser.add_argument("--child", choices=("warmed", "unwarmed"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child == "warmed", args.later))))
        return 0
    firsts: dict[tuple[str, str], list[float]] = {}
    laters: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for variant in ("unwarmed", "warmed"):
            for name, runs in _run_child(variant == "warmed", args.later).items():
                firsts.setdefault((name, variant), []).append(runs[0])
                laters.setdefault((name, variant), []).extend(runs[1:])
    print(f"first action after a start vs later ones ({args.rounds} fresh processes each)")
    for name in ACTIONS:
        for variant in ("unwarmed", "warmed"):
            first = statistics.median(firsts[(name, variant)])
            later = statistics.median(laters[(name, variant)])
            print(
                f"  {name:13} {variant:9} first {first * 1000:8.1f} ms"
                f"  later {later * 1000:6.1f} ms  ratio {first / later:6.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
