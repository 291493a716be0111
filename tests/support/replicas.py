"""Two ``feedguard-responder`` processes on one redis-server, for crash tests.

What a crash test needs, without any hook in the responder:

- ``Replica``: one responder process (``python -m feedguard.responder``) on a fixed
  loopback port, so it can be SIGKILLed and started again where Alertmanager
  posts (the port is its identity in Alertmanager's config).
- ``HeldAnswer``: an aiohttp middleware for the local fakes (Kubernetes,
  runtime-config, Airflow, SeaTunnel, Slack...).  Armed with a method and a path,
  it lets the next matching request change the fake's state, then holds its
  answer until ``release()``: the caller has made its change and not yet heard
  of it, the moment "between the call and the record".
- ``replica_of_peer``: which replica sent a request, from the connection the
  fake saw (``/proc/net/tcp`` and the processes' socket inodes), so the test
  kills exactly the replica that holds the incident's lease.

Typical use::

    hold = HeldAnswer()
    app = fake.app(); hold.attach(app)              # before serving it
    replicas = [Replica.create(tmp_path, f"r{n}", config) for n in range(2)]
    async with running_replicas(replicas):
        hold.arm("POST", "/runtime-config/v1/features/external_read_cache")
        ...post alerts to the Alertmanagers...
        sent = await hold.wait()                     # the change landed, answer held
        victim = replica_of_peer(replicas, sent)
        victim.kill()                                # SIGKILL
        hold.release()
        await victim.restart()                       # back on the same port
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from .services import free_port, stop_process

Handler = Any  # aiohttp's middleware handler type


class HeldAnswer:
    """Holds the answer of one armed request after the fake applied it (see module doc)."""

    def __init__(self) -> None:
        self._armed: tuple[str, str] | None = None
        self._reached = asyncio.Event()
        # One gate per armed request: releasing the one held must not let through
        # the next one, armed before the release.
        self._gate = asyncio.Event()
        self._holding: asyncio.Event | None = None
        self.peer_port: int | None = None
        self.server_port: int | None = None
        self.held: list[tuple[str, str]] = []  # (method, path) of every request held

    def attach(self, app: web.Application) -> web.Application:
        """Put the hold in front of ``app``'s own middlewares (before it is served)."""
        app.middlewares.insert(0, self._middleware)
        return app

    def arm(self, method: str, path: str) -> None:
        """Hold the next successful ``method`` request whose path ends with ``path``."""
        self._armed = (method.upper(), path)
        self._reached.clear()
        self._gate = asyncio.Event()
        self.peer_port = None

    def disarm(self) -> None:
        self._armed = None
        self._gate.set()
        self.release()

    async def wait(self, within: float = 60.0) -> tuple[int, int]:
        """Until the armed request's change landed; its connection's (client port,
        server port): Linux reuses a client port towards other servers, so the
        client port alone does not name the connection."""
        async with asyncio.timeout(within):
            await self._reached.wait()
        assert self.peer_port is not None
        assert self.server_port is not None
        return self.peer_port, self.server_port

    def release(self) -> None:
        """Let the held answer go (to a client that may be dead by now)."""
        if self._holding is not None:
            self._holding.set()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        armed = self._armed
        if (
            armed is not None
            and request.method == armed[0]
            and request.path.endswith(armed[1])
            # A server-side dry run (the start-up client check) has no effect to hold.
            and "dryRun" not in request.query
            and response.status < 300
        ):
            self._armed = None
            transport = request.transport
            peer = transport.get_extra_info("peername") if transport else None
            local = transport.get_extra_info("sockname") if transport else None
            self.peer_port = int(peer[1]) if peer else 0
            self.server_port = int(local[1]) if local else 0
            self.held.append((request.method, request.path))
            self._holding = gate = self._gate
            self._reached.set()
            await gate.wait()
        return response


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:[") : -1])
    return inodes


def _inode_of_connection(client_port: int, server_port: int) -> str | None:
    """The inode of the client socket 127.0.0.1:client_port -> 127.0.0.1:server_port,
    from /proc/net/tcp (local and remote address, state, ..., inode)."""
    local, remote = f"0100007F:{client_port:04X}", f"0100007F:{server_port:04X}"
    with open("/proc/net/tcp") as lines:
        next(lines)  # header
        for line in lines:
            fields = line.split()
            # A closed one may linger in TIME_WAIT with no owner (inode 0).
            if fields[1] == local and fields[2] == remote and fields[9] != "0":
                return fields[9]
    return None


@dataclass
class Replica:
    """One responder process on a fixed port; ``kill()`` is SIGKILL, ``restart()`` starts
    it again on the same port with the same config."""

    name: str
    port: int
    config_file: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    @classmethod
    def create(
        cls,
        workdir: Path,
        name: str,
        config: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
    ) -> Replica:
        home = workdir / name
        home.mkdir(parents=True, exist_ok=True)
        config_file = home / "responder.yml"
        config_file.write_text(yaml.safe_dump(dict(config)))
        base = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
        return cls(
            name=name,
            port=free_port(),
            config_file=config_file,
            log_path=home / "responder.log",
            env={**base, "FEEDGUARD_LOG_FORMAT": "json", **(env or {})},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook/alertmanager"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self) -> None:
        argv = [
            sys.executable, "-m", "feedguard.responder",
            "--config", str(self.config_file),
            "--listen", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                argv, stdout=log_file, stderr=subprocess.STDOUT, env=self.env
            )

    async def ready(self, within: float = 60.0) -> None:
        async with (
            asyncio.timeout(within),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
        ):
            while True:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited:\n{self.log()[-4000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)  # polling another process's start-up

    async def start(self) -> None:
        self.spawn()
        await self.ready()

    async def restart(self) -> None:
        assert not self.alive, f"{self.name} is still running"
        await self.start()

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or released."""
        assert self.process is not None, f"{self.name} never started"
        assert self.alive, f"{self.name} is not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def owns_socket(self, inode: str) -> bool:
        return self.alive and self.process is not None and inode in _socket_inodes(self.process.pid)


def replica_of_peer(replicas: Sequence[Replica], connection: tuple[int, int]) -> Replica:
    """The replica that holds the client end of ``connection`` (``HeldAnswer.wait()``)."""
    inode = _inode_of_connection(*connection)
    found = [r for r in replicas if inode is not None and r.owns_socket(inode)]
    if len(found) != 1:
        raise AssertionError(f"no single replica holds connection {connection}: {found}")
    return found[0]


@contextlib.asynccontextmanager
async def running_replicas(replicas: Sequence[Replica]) -> AsyncIterator[Sequence[Replica]]:
    """Start every replica (in parallel) and stop them at the end, dead or alive."""
    try:
        for replica in replicas:
            replica.spawn()
        await asyncio.gather(*(r.ready() for r in replicas))
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


@dataclass
class Fakes:
    """Fake services served with one ``HeldAnswer`` in front: name -> base URL."""

    hold: HeldAnswer = field(default_factory=HeldAnswer)
    urls: dict[str, str] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def serve_held(apps: Mapping[str, web.Application]) -> AsyncIterator[Fakes]:
    """Serve each app on a free loopback port with the same hold in front of all."""
    from .fake_http import serve_app

    fakes = Fakes()
    async with contextlib.AsyncExitStack() as stack:
        for name, app in apps.items():
            fakes.hold.attach(app)
            fakes.urls[name] = await stack.enter_async_context(serve_app(app))
        try:
            yield fakes
        finally:
            fakes.hold.disarm()  # a held answer must not keep the servers from closing
