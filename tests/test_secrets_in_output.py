"""No configured secret in anything the services print, in the failure paths.

The services run as processes with a Redis password, a webhook token, a flags
token and a Slack incoming-webhook URL configured, and are driven through:
a config error naming the Redis URL, a start-up with the Redis store down, a
Redis read failing, Slack answering 429 (slack_sdk logs the webhook URL on
each retry), a malformed HTTP request (aiohttp's error log with traceback),
a client gone mid-body, and the exporter with its Redis down.  Everything on
stdout and stderr is searched for each secret (0 occurrences), and every
stdout line must be one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog

from feedguard.core.log import configure_logging, redact_text, register_secret

from .support.fake_slack import FakeSlack, running_fake_slack
from .support.raw_http import client_gone_mid_body
from .support.responder import alert, notification
from .support.services import free_port

REPO = Path(__file__).resolve().parent.parent
REDIS_PASSWORD = "rEdisPw-3f9a1c77"
WEBHOOK_TOKEN = "hook-token-8b2e4d1f"
FLAGS_TOKEN = "flags-token-5c6d7e8f"
SECRETS = [REDIS_PASSWORD, WEBHOOK_TOKEN, FLAGS_TOKEN]
CATALOG = """
providers:
  - name: ISO-NE
    datasets: [lmp]
    dags: [isone_lmp_ingest]
"""
PLAYBOOKS = """
playbooks:
  - name: provider-down
    matchers: ['alertname="ExternalProviderDown"']
    firing: []
    resolved: []
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
    env.update(extra)
    return env


def _assert_clean(name: str, stdout: str, stderr: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in stdout, f"{name}: secret on stdout:\n{stdout}"
        assert secret not in stderr, f"{name}: secret on stderr:\n{stderr}"
    for line in stdout.splitlines():
        assert isinstance(json.loads(line), dict), f"{name}: not a JSON object: {line!r}"


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _command(service: str) -> list[str]:
    return [sys.executable, "-m", f"feedguard.{service}"]


async def test_config_error_names_no_password(tmp_path: Path) -> None:
    dead = f"redis://feeder:{REDIS_PASSWORD}@127.0.0.1:99999/0"
    config = tmp_path / "responder.yml"
    config.write_text(f"redis: {{url: '{dead}'}}\nstore: {{backend: redis}}\n")
    for service in ("responder", "exporter"):
        code, out, err = await _run(
            [*_command(service), "check-config", "--config", str(config)],
            _env(FEEDGUARD_REDIS_URL=dead),
        )
        assert code == 2, err
        assert "redis.url" in err  # the error is still reported, with its place
        _assert_clean(f"{service} check-config", out, err, [REDIS_PASSWORD])


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack() as fake:
        yield fake


async def _serve_responder(tmp_path: Path, fake: FakeSlack, store: str) -> tuple[str, str]:
    """Run the responder through its failure paths; what it printed."""
    port = free_port()
    dead_redis = f"redis://feeder:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    (tmp_path / "catalog.yml").write_text(CATALOG)
    config = tmp_path / "responder.yml"
    config.write_text(
        f"catalog_file: {tmp_path / 'catalog.yml'}\n"
        f"store: {{backend: {store}, sqlite_path: {tmp_path / 'r.db'}}}\n"
        "notes: {max_retries: 2, max_retry_after_seconds: 5}\n"
        "log: {format: json}\n" + PLAYBOOKS
    )
    env = _env(
        FEEDGUARD_REDIS_URL=dead_redis,
        FEEDGUARD_WEBHOOK_BEARER_TOKEN=WEBHOOK_TOKEN,
        FEEDGUARD_FEATURES_TOKEN=FLAGS_TOKEN,
        FEEDGUARD_NOTES_WEBHOOK_URL=fake.webhook_url,
        FEEDGUARD_DRY_RUN="false",
    )
    process = await asyncio.create_subprocess_exec(
        *_command("responder"),
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    fake.rate_limit_next(count=3, retry_after=1)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await _wait_ready(session, base, process)
            auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
            body = notification([alert("ISO-NE")])
            async with session.post(f"{base}/webhook/alertmanager", json=body, headers=auth) as r:
                assert r.status == (200 if store == "sqlite" else 503)
            async with session.post(
                f"{base}/webhook/alertmanager", json=body, headers={"Authorization": "Bearer x"}
            ) as r:
                assert r.status == 401
            await _malformed_and_gone(port)
            if store == "sqlite":
                # The initial note: 429 three times (slack_sdk logs its URL), then refused.
                await _wait_for(lambda: len(fake.requests) >= 3, process)
    finally:
        process.terminate()
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    return out.decode(), err.decode()


async def _wait_ready(
    session: aiohttp.ClientSession, base: str, process: asyncio.subprocess.Process
) -> None:
    async def up() -> bool:
        try:
            async with session.get(f"{base}/healthz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    await _wait_for_async(up, process)


async def _wait_for(check: object, process: asyncio.subprocess.Process) -> None:
    async def wrapped() -> bool:
        return bool(check())  # type: ignore[operator]

    await _wait_for_async(wrapped, process)


async def _wait_for_async(check: object, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(60):
        while not await check():  # type: ignore[operator]
            assert process.returncode is None, "the service exited"
            await asyncio.sleep(0.05)  # polling another process


async def _malformed_and_gone(port: int) -> None:
    # A request aiohttp's parser refuses (it logs the error with a traceback) ...
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    # ... and a client gone mid-body.
    await client_gone_mid_body(port, WEBHOOK_TOKEN)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_responder_failure_paths_print_no_secret(
    tmp_path: Path, fake_slack: FakeSlack, store: str
) -> None:
    out, err = await _serve_responder(tmp_path, fake_slack, store)
    secrets = [*SECRETS, fake_slack.webhook_url.rsplit("/", 1)[1], fake_slack.webhook_url]
    _assert_clean(f"responder ({store})", out, err, secrets)
    events = [json.loads(line) for line in out.splitlines()]
    names = {e.get("event") for e in events}
    if store == "redis":
        assert "state store unavailable at start-up" in names
    else:
        assert "cannot read last successes and provider status" in names
        # slack_sdk's own retry line made it through, as JSON and masked.
        assert any(e.get("logger", "").startswith("slack_sdk") for e in events), names
    assert any(e.get("logger") == "aiohttp.server" for e in events), names
    assert "client disconnected" in names


async def test_exporter_with_redis_down_prints_no_secret(tmp_path: Path) -> None:
    port = free_port()
    dead = f"redis://feeder:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    (tmp_path / "catalog.yml").write_text(CATALOG)
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"catalog_file: {tmp_path / 'catalog.yml'}\nlog: {{format: json}}\n"
        "probes: {enabled: false}\n"
    )
    process = await asyncio.create_subprocess_exec(
        *_command("exporter"),
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        env=_env(FEEDGUARD_REDIS_URL=dead),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await _wait_ready(session, f"http://127.0.0.1:{port}", process)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 200
    finally:
        process.terminate()
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    _assert_clean("exporter", out.decode(), err.decode(), [REDIS_PASSWORD])


@pytest.mark.usefixtures("restore_logging")
def test_third_party_loggers_are_json_and_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """slack_sdk, aiohttp, asyncio, kubernetes, urllib3 and warnings: one JSON line each,
    secrets masked, tracebacks included as a field."""
    register_secret(WEBHOOK_TOKEN)
    configure_logging("info", "json")
    try:
        url = "https://hooks.slack.com/services/T000/B000/wEbHoOkSeCrEt99"
        logging.getLogger("slack_sdk.webhook.async_client").info(f"retry for POST {url}")
        try:
            raise ValueError(f"token {WEBHOOK_TOKEN} refused by redis://u:{REDIS_PASSWORD}@h/0")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
        logging.getLogger("asyncio").error("Task exception was never retrieved")
        logging.getLogger("kubernetes.client.rest").warning("xoxb-123-456-abcdef forbidden")
        logging.getLogger("urllib3.connectionpool").warning(f"Retrying {url}")
        logging.captureWarnings(True)
        import warnings

        warnings.warn(f"deprecated {WEBHOOK_TOKEN}", DeprecationWarning, stacklevel=1)
        out = capsys.readouterr().out
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 6, out
    assert {e["logger"] for e in lines} >= {"slack_sdk.webhook.async_client", "aiohttp.server"}
    _assert_clean("loggers", out, "", [WEBHOOK_TOKEN, REDIS_PASSWORD, "wEbHoOkSeCrEt99", "abcdef"])
    assert "ValueError" in lines[1]["exception"]


def test_redact_text() -> None:
    assert redact_text("redis://user:pw@host:6379/0") == "redis://***@host:6379/0"
    assert redact_text("https://tok@example.com/x") == "https://***@example.com/x"
    assert redact_text("plain https://example.com/a@b") == "plain https://example.com/a@b"


# Registers secrets from a thread while the main thread redacts log lines, with the
# interpreter switching threads as often as it can: iterating the registered set
# while it grows used to raise "Set changed size during iteration".
_RACE = r"""
import sys, threading
from feedguard.core.log import redact_text, register_secret

sys.setswitchinterval(1e-6)
secrets = [f"race-secret-{n:06d}-padding" for n in range(6000)]
done = threading.Event()
errors = []

def register():
    for secret in secrets:
        register_secret(secret)
    done.set()

thread = threading.Thread(target=register)
thread.start()
lines = 0
try:
    while not done.is_set():
        redact_text(f"line {lines}: {secrets[lines % len(secrets)]} was refused")
        lines += 1
except RuntimeError as exc:
    errors.append(repr(exc))
thread.join()
masked = redact_text(" ".join(secrets))
print(repr(errors) if errors else "ok", lines, masked.count("***"), len(secrets))
"""


def test_redaction_while_another_thread_registers_secrets() -> None:
    """A logging call never raises: redacting while secrets are registered from another
    thread (config read in a worker thread while the loop logs) is safe, and every
    secret registered is masked afterwards.  In a child process: the thousands of
    secrets it registers stay out of this one's redaction."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", _RACE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    verdict, lines, masked, registered = result.stdout.split(maxsplit=3)
    assert verdict == "ok", result.stdout
    assert int(lines) > 0  # it did redact while the other thread registered
    assert int(masked) == int(registered) == 6000


def test_a_secret_containing_another_is_masked_whole() -> None:
    register_secret("inner-secret-4e1d")
    register_secret("outer-inner-secret-4e1d-tail")
    assert redact_text("got outer-inner-secret-4e1d-tail") == "got ***"
    assert redact_text("got inner-secret-4e1d") == "got ***"
