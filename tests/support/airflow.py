"""A real, throw-away Airflow 3 instance on loopback for the tests (one per session).

SQLite + LocalExecutor + SimpleAuthManager with a pre-written passwords file,
three processes (api-server, dag-processor, scheduler --skip-serve-logs) in
their own process groups, AIRFLOW_HOME in a temporary directory, DAGs from
tests/airflow_dags. Facts behind each setting: ../shared/notes/airflow3-facts.md.

Everything here is synchronous (urllib): fixtures and helpers run outside the
tests' event loops.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from feedguard.core.airflow_api import AirflowSettings

from .services import free_port, with_parent

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "tests" / "airflow_dags"
# The DAGs every test may rely on (all schedule=None, quick tasks).
TEST_DAGS = (
    "external_data_ingest",
    "external_backfill",
    "external_data_fallback",
    "external_data_backfill",
    "external_failing",
    # Used only by the client and collector tests of issue 7.
    "feedguard_client_test",
    "feedguard_heartbeat_test",
    # The verified-recovery tests' backfills.
    "feedguard_backfill_succeeds",
    "feedguard_backfill_fails",
    "feedguard_backfill_gated",  # fails unless Variable feedguard_backfill_allowed is "yes"
)
USERNAME = "feedguard"
AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def airflow_venv() -> Path:
    venv = Path(os.environ.get("FEEDGUARD_AIRFLOW_VENV", REPO / ".venv-airflow"))
    if not venv.is_absolute():
        venv = REPO / venv
    return venv


def airflow_binary() -> Path:
    binary = airflow_venv() / "bin" / "airflow"
    if not binary.exists():
        # `make test` builds this venv; running pytest by hand without it is a
        # set-up mistake, not a reason to skip the Airflow tests silently.
        pytest.fail(f"{binary} missing: run `make airflow-venv` (installs apache-airflow)")
    return binary


def require_openlineage_provider() -> None:
    """Fail at once, saying what to run, when the Airflow venv predates the OpenLineage provider."""
    found = any(airflow_venv().glob("lib/python3*/site-packages/airflow/providers/openlineage"))
    if not found:
        pytest.fail(
            f"{airflow_venv()} has no apache-airflow-providers-openlineage: run "
            "`make airflow-venv` (its stamp names the package list, so it installs the provider)"
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def resign_jwt(token: str, secret: str, **claims: Any) -> str:
    """The same JWT with some claims replaced, signed again with ``secret`` (HS*)."""
    head_b64, body_b64, _ = token.split(".")
    header = json.loads(_unb64url(head_b64))
    body = {**json.loads(_unb64url(body_b64)), **claims}
    signing = f"{head_b64}.{_b64url(json.dumps(body, separators=(',', ':')).encode())}"
    digest = _HASHES[header["alg"]]
    signature = hmac.new(secret.encode(), signing.encode(), digest).digest()
    return f"{signing}.{_b64url(signature)}"


@dataclass
class AirflowInstance:
    base_url: str
    username: str
    password: str
    home: Path
    dags_folder: Path
    jwt_secret: str
    # Where the OpenLineage provider posts its events (AIRFLOW__OPENLINEAGE__TRANSPORT):
    # a loopback port reserved for the session, served by a test when it wants them.
    lineage_port: int = 0
    lineage_token: str = ""
    dag_ids: tuple[str, ...] = TEST_DAGS
    startup_seconds: float = 0.0
    migrate_seconds: float = 0.0  # 0 when a cached migrated database was copied
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: str | None = None

    # -- what tests hand to the code under test --

    def settings(self, **overrides: Any) -> AirflowSettings:
        """Client settings for this instance (the password inline; tests only)."""
        values: dict[str, Any] = {
            "enabled": True,
            "base_url": self.base_url,
            "version": "3",
            "username": self.username,
            "password": self.password,
            "timeout_seconds": 10.0,
        }
        values.update(overrides)
        return AirflowSettings(**values)

    # -- direct API access for arranging and checking, independent of the client --

    def token(self, fresh: bool = False) -> str:
        if self._token is None or fresh:
            status, body = self._http(
                "POST",
                "/auth/token",
                {"username": self.username, "password": self.password},
                auth=False,
            )
            if status != 201:
                raise RuntimeError(f"token request answered {status}: {body}")
            self._token = str(body["access_token"])
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``/api/v2`` + path with a bearer token: (status, parsed JSON or None)."""
        return self._http(method, "/api/v2" + path, body)

    def _http(self, method: str, path: str, body: Any = None, auth: bool = True) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            # Generous: on a busy 2-core machine Airflow's first answers
            # (DAG bundle parsing, a cold API worker) take well over 10 s.
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        status, body = self.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})
        if status != 200:
            raise RuntimeError(f"pausing {dag_id} answered {status}: {body}")

    def is_paused(self, dag_id: str) -> bool:
        status, body = self.api("GET", f"/dags/{dag_id}")
        if status != 200:
            raise RuntimeError(f"GET dag {dag_id} answered {status}: {body}")
        return bool(body["is_paused"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        status, body = self.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-id&limit=100")
        if status != 200:
            raise RuntimeError(f"listing runs of {dag_id} answered {status}: {body}")
        return list(body["dag_runs"])

    def clear_runs(self, dag_id: str) -> None:
        """Delete every run of a DAG and pause it again: a clean slate for one test."""
        for run in self.runs(dag_id):
            self.api("DELETE", f"/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}")
        self.set_paused(dag_id, True)

    def trigger(self, dag_id: str, run_id: str | None = None, conf: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        status, answer = self.api("POST", f"/dags/{dag_id}/dagRuns", body)
        if status != 200:
            raise RuntimeError(f"triggering {dag_id} answered {status}: {answer}")
        return dict(answer)

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        states: Sequence[str] = ("success", "failed"),
        timeout: float = 90.0,
    ) -> dict[str, Any]:
        """Poll until the run reaches one of ``states``; the DAG must be unpaused."""
        deadline = time.monotonic() + timeout
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
        while True:
            status, body = self.api("GET", path)
            if status == 200 and body["state"] in states:
                return dict(body)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"run {dag_id}/{run_id} not in {states} after {timeout}s: {body}\n"
                    + self.log_tail()
                )
            time.sleep(0.5)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for name in self.processes:
            path = self.home / f"{name}.log"
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}.log ---\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        # Task runners and API workers live in the same process groups.
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    # Each process was started in a session of its own: its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


# AIRFLOW__OPENLINEAGE__NAMESPACE: the job.namespace of every event.
LINEAGE_NAMESPACE = "feedguard-test"


def _lineage_transport(port: int, token: str) -> str:
    """The provider's HTTP transport (openlineage-facts.md); ``api_key`` sends a Bearer token."""
    return json.dumps(
        {
            "type": "http",
            "url": f"http://127.0.0.1:{port}",
            "endpoint": "api/v1/lineage",
            "timeout": 5,
            # Most tests leave the port closed: fail at once, no backoff retries
            # holding up the scheduler's and the tasks' event emission.
            "retry": {"total": 0},
            "auth": {"type": "api_key", "apiKey": token},
        }
    )


def _environment(
    home: Path, port: int, password_file: Path, jwt_secret: str, lineage: tuple[int, str]
) -> dict[str, str]:
    base_url = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "FEEDGUARD_")) and key not in ("PYTHONPATH",)
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "16",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": _lineage_transport(*lineage),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": LINEAGE_NAMESPACE,
            "NO_PROXY": "*",
            "no_proxy": "*",
        }
    )
    return env


def _start(name: str, argv: list[str], env: dict[str, str], home: Path) -> subprocess.Popen[bytes]:
    with (home / f"{name}.log").open("wb") as log_file:
        return subprocess.Popen(
            with_parent(argv),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
            start_new_session=True,
        )


def _wait_ready(instance: AirflowInstance, timeout: float) -> None:
    """Ready when the API answers and every test DAG is parsed (GET /dags/<id> 200)."""
    deadline = time.monotonic() + timeout
    pending = list(instance.dag_ids)
    last = ""
    while pending:
        for name, process in instance.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {process.returncode}\n{instance.log_tail()}"
                )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Airflow not ready after {timeout}s (waiting for {pending}; last: {last})\n"
                + instance.log_tail()
            )
        try:
            status, body = instance.api("GET", f"/dags/{pending[0]}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            instance._token = None
            time.sleep(0.3)
            continue
        if status == 200:
            pending.pop(0)
            continue
        last = f"{status} {body}"
        time.sleep(0.3)


def _migrated_database(binary: str, env: dict[str, str], home: Path, timeout: float) -> float:
    """Put a migrated SQLite database at ``home/airflow.db``; the seconds migrating took.

    ``airflow db migrate`` takes 3-7 s on this machine; its result depends only on
    the installed Airflow, so it is kept next to the venv (keyed by the installed
    package) and copied for later sessions.
    """
    package = airflow_venv() / "lib"
    marker = next(package.glob("python3*/site-packages/airflow/__init__.py"), None)
    key = "none"
    if marker is not None:
        st = marker.stat()
        key = hashlib.sha256(f"{marker}:{st.st_mtime_ns}:{st.st_size}".encode()).hexdigest()[:16]
    template = airflow_venv() / f".feedguard-migrated-{key}.db"
    target = home / "airflow.db"
    if template.exists():
        shutil.copyfile(template, target)
        return 0.0
    started = time.monotonic()
    migrate = subprocess.run(
        [binary, "db", "migrate"], env=env, cwd=home, capture_output=True, timeout=timeout
    )
    if migrate.returncode != 0:
        output = (migrate.stdout + migrate.stderr).decode(errors="replace")[-4000:]
        raise RuntimeError(f"airflow db migrate failed ({migrate.returncode}):\n{output}")
    # Copy before any process opens it; atomic, so concurrent sessions never see half a file.
    partial = template.with_suffix(f".{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        shutil.copyfile(target, partial)
        os.replace(partial, template)
    return time.monotonic() - started


@contextlib.contextmanager
def airflow_instance(home: Path, timeout: float = 120.0) -> Iterator[AirflowInstance]:
    """Migrate a fresh SQLite DB, start the three processes, wait for the DAGs; stop after."""
    binary = str(airflow_binary())
    started = time.monotonic()
    port = free_port()
    password = secrets.token_urlsafe(16)
    password_file = home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({USERNAME: password}))
    jwt_secret = secrets.token_urlsafe(48)[:64]  # 64 bytes: no PyJWT key-length warning
    lineage = (free_port(), secrets.token_urlsafe(24))
    env = _environment(home, port, password_file, jwt_secret, lineage)
    migrate_seconds = _migrated_database(binary, env, home, timeout)
    instance = AirflowInstance(
        base_url=f"http://127.0.0.1:{port}",
        username=USERNAME,
        password=password,
        home=home,
        dags_folder=DAGS_FOLDER,
        jwt_secret=jwt_secret,
        lineage_port=lineage[0],
        lineage_token=lineage[1],
    )
    try:
        instance.processes["api-server"] = _start(
            "api-server",
            [binary, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env,
            home,
        )
        instance.processes["dag-processor"] = _start(
            "dag-processor", [binary, "dag-processor"], env, home
        )
        instance.processes["scheduler"] = _start(
            "scheduler", [binary, "scheduler", "--skip-serve-logs"], env, home
        )
        _wait_ready(instance, timeout - (time.monotonic() - started))
        instance.startup_seconds = time.monotonic() - started
        instance.migrate_seconds = migrate_seconds
        yield instance
    finally:
        instance.stop()
