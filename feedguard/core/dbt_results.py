"""dbt test outcomes from ``target/run_results.json`` (dbt 1.5-1.12: run-results v4-v6).

dbt rewrites the one file at the end of every ``run``/``test``/``build``/...
invocation, so it tells only the newest invocation: which command it was
(``args.which``), what it selected (``args.select``, ``args.exclude``), when
it finished (``metadata.generated_at``) and each node's ``status``.  Only test
nodes (``test.…``, and ``unit_test.…`` from dbt 1.8) are counted; a model's
status in a ``dbt build`` is not a test result (a model that errors leaves its
tests ``skipped``).  ``warn`` is a test that found rows but is configured to
warn: it counts as passed, as dbt's own exit code does.

Used by the responder's verified recovery (runbook 4's ``dbt test --select
mart_external_series_catalog+``).  Blocking file I/O: callers run it in a
worker thread.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .times import iso_epoch

# A file changed within the last seconds may change again within the same mtime
# tick (coarse on some file systems): it is read again until it settles.
RACY_NS = 2_000_000_000
SCHEMA = "https://schemas.getdbt.com/dbt/run-results/{}.json"
RUN_RESULTS_SCHEMAS = frozenset(SCHEMA.format(v) for v in ("v4", "v5", "v6"))
# The commands whose run_results.json hold test results.
TEST_COMMANDS = ("test", "build")
TEST_STATUSES = ("pass", "warn", "fail", "error", "skipped")
TEST_PREFIXES = ("test.", "unit_test.")
FAILED_STATUSES = ("fail", "error")


class DbtResultsError(Exception):
    """The file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class DbtInvocation:
    """The test results of one dbt invocation."""

    command: str  # args.which: test, build, run, seed, ...
    select: tuple[str, ...]
    exclude: tuple[str, ...]
    generated_at: float  # when the invocation finished
    dbt_version: str | None
    passed: int  # pass and warn
    warned: int
    failed: tuple[str, ...]  # unique_ids of fail and error, in the file's order
    skipped: int

    @property
    def ran(self) -> int:
        """Tests that ran (not skipped)."""
        return self.passed + len(self.failed)

    def covers(self, selector: str) -> bool:
        """Whether this invocation ran the tests ``dbt test --select <selector>`` runs.

        Judged from the arguments alone (the graph is in the manifest, not here):
        a test/build with no ``--select`` runs the whole project; otherwise every
        space-separated part of ``selector`` must be one of the union's parts
        verbatim.  Any ``--exclude`` may drop a wanted test, so it does not cover.
        """
        if self.command not in TEST_COMMANDS or self.exclude:
            return False
        if not self.select:
            return True
        given = {part for item in self.select for part in item.split()}
        return set(selector.split()) <= given


def _selectors(path: Path, args: dict[str, Any], key: str) -> tuple[str, ...]:
    value = args.get(key)
    if value is None:  # dbt leaves null arguments out of args
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DbtResultsError(f"{path}: args.{key} is not a list of selectors: {value!r:.80}")


def artifact_metadata(
    path: Path, data: Any, artifact: str, schemas: frozenset[str], error: type[Exception]
) -> dict[str, Any]:
    """The ``metadata`` of a parsed dbt ``artifact`` (``sources.json``...) whose schema is
    one of ``schemas``; raises ``error`` naming the file and the field otherwise."""
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise error(f"{path}: not a dbt {artifact} (no metadata object)")
    metadata: dict[str, Any] = data["metadata"]
    version = metadata.get("dbt_schema_version")
    if version not in schemas:
        known = ", ".join(sorted(schemas))
        raise error(
            f"{path}: metadata.dbt_schema_version {version!r} is not one this reads ({known})"
        )
    return metadata


def parse_run_results(path: Path, data: Any) -> DbtInvocation:
    """The tests of a parsed run_results.json; DbtResultsError naming what is wrong."""
    metadata = artifact_metadata(
        path, data, "run_results.json", RUN_RESULTS_SCHEMAS, DbtResultsError
    )
    generated = metadata.get("generated_at")
    try:
        generated_at = iso_epoch(generated) if isinstance(generated, str) else None
    except ValueError as exc:
        raise DbtResultsError(f"{path}: metadata.generated_at: {exc}") from None
    if generated_at is None:
        raise DbtResultsError(f"{path}: metadata.generated_at is missing")
    args = data.get("args")
    if not isinstance(args, dict) or not isinstance(args.get("which"), str):
        raise DbtResultsError(f"{path}: args.which is missing (which dbt command wrote this)")
    results = data.get("results")
    if not isinstance(results, list):
        raise DbtResultsError(f"{path}: results is not a list")
    passed = warned = skipped = 0
    failed: list[str] = []
    for index, item in enumerate(results):
        unique_id = item.get("unique_id") if isinstance(item, dict) else None
        if not isinstance(unique_id, str):
            raise DbtResultsError(f"{path}: results[{index}].unique_id is missing")
        if not unique_id.startswith(TEST_PREFIXES):
            continue  # a model, seed, snapshot...: not a test result
        status = item.get("status")
        if status not in TEST_STATUSES:
            raise DbtResultsError(
                f"{path}: results[{index}].status {status!r} of {unique_id} is not one of "
                f"{', '.join(TEST_STATUSES)}"
            )
        if status in FAILED_STATUSES:
            failed.append(unique_id)
        elif status == "skipped":
            skipped += 1
        else:
            passed += 1
            warned += status == "warn"
    version_text = metadata.get("dbt_version")
    return DbtInvocation(
        command=args["which"],
        select=_selectors(path, args, "select"),
        exclude=_selectors(path, args, "exclude"),
        generated_at=generated_at,
        dbt_version=version_text if isinstance(version_text, str) else None,
        passed=passed,
        warned=warned,
        failed=tuple(failed),
        skipped=skipped,
    )


class RunResultsFile:
    """One run_results.json, parsed again only when its size or mtime changed.

    Not thread-safe: used from one worker thread at a time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._last: DbtInvocation | None = None
        self.parsed = 0  # files parsed so far (for the cache's tests)

    def read(self) -> DbtInvocation | None:
        """The newest invocation's tests; None while dbt has written no file yet."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DbtResultsError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        key = (stat.st_mtime_ns, stat.st_size)
        settled = time.time_ns() - stat.st_mtime_ns > RACY_NS
        if key == self._seen and self._last is not None and settled:
            return self._last
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DbtResultsError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            # dbt writes the file in place: a read during the write sees it cut short.
            raise DbtResultsError(
                f"{self.path}: run_results.json is truncated or not JSON ({exc})"
            ) from None
        self.parsed += 1
        run = parse_run_results(self.path, data)
        self._seen, self._last = key, run
        return run


__all__ = [
    "RUN_RESULTS_SCHEMAS",
    "DbtInvocation",
    "DbtResultsError",
    "RunResultsFile",
    "artifact_metadata",
    "parse_run_results",
]
