"""The store interface both backends implement (and the contract tests check)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple, TypeVar

from feedguard.core.cli import StartupError

R = TypeVar("R")
Doc = dict[str, Any]
# An updater gets the current document (None when absent) and returns the new
# one (None: leave it unchanged) and a result for the caller.  It may run
# more than once (optimistic retries), so it must not have side effects.
Updater = Callable[[Doc | None], tuple[Doc | None, R]]
# A document by kind and key, as ``update_many`` names them.
Ref = tuple[str, str]
# ``update_many``'s function: the documents read (None when absent) → the changed ones
# (the others are left as they are) and a result; pure, like an Updater.
ManyUpdater = Callable[[dict[Ref, Doc | None]], tuple[dict[Ref, Doc], R]]


class Ack(NamedTuple):
    """Inbox entries an ``update_many`` applied: the ``entries`` oldest of a lane, dropped in
    the same transaction, so a batch is applied exactly once (never again after a crash).
    ``lease``: (name, owner) of the inbox lease the caller holds; when another owner has
    it by then, the transaction writes nothing and raises ``LeaseLost``."""

    entries: int
    urgent: bool = False
    lease: tuple[str, str] | None = None


class StoreUnavailable(Exception):
    """The store cannot be reached or refused a write; callers answer 503 / retry later."""


class LeaseLost(StoreUnavailable):
    """The lease a transaction was made under is another owner's now (it expired): nothing
    was written; that owner does the work."""


class StoreUnusable(StartupError):
    """The store can never work as configured (an SQLite file that cannot be opened,
    one another responder already uses): the service does not start."""


class InvalidValue(ValueError):
    """A key or document the store cannot hold (a string that is not valid UTF-8).

    Only the caller that passed it gets this; callers answer 400."""


class Store(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store does not answer."""

    @abc.abstractmethod
    async def record_transitions(
        self, items: Sequence[tuple[str, Doc]], urgent: Collection[str] = ()
    ) -> list[bool]:
        """Atomically: for each (transition key, payload) not seen before, remember the key
        and append the payload to the inbox (to its urgent lane when the key is in
        ``urgent``).  Returns, per item, whether it was new."""

    @abc.abstractmethod
    async def inbox_peek(self, limit: int, *, urgent: bool = False) -> list[Doc]:
        """The oldest entries of one inbox lane, in order (only the inbox lease holder
        calls this).  The urgent lane holds transitions that may open an incident, so
        they are applied ahead of a backlog of repeats (intake.py)."""

    @abc.abstractmethod
    async def inbox_stats(self) -> tuple[int, float | None]:
        """How many entries wait in the inbox (both lanes), and the oldest one's
        ``received_at``."""

    async def inbox_ack(self, count: int, *, urgent: bool = False) -> None:
        """Drop the ``count`` oldest entries of one inbox lane (the intake drops a batch
        inside the transaction that applies it: ``update_many``'s ``ack``)."""
        await self.update_many([], _unchanged, ack=Ack(count, urgent))

    @abc.abstractmethod
    async def get(self, kind: str, key: str) -> Doc | None: ...

    @abc.abstractmethod
    async def list(self, kind: str, *, live_only: bool = False) -> list[Doc]:
        """Documents of a kind; ``live_only``: those whose ``live`` field is true."""

    async def update(self, kind: str, key: str, fn: Updater[R]) -> R:
        """Read-modify-write one document atomically (retried on concurrent change): the
        one-document ``update_many``."""
        ref = (kind, key)

        def one(docs: dict[Ref, Doc | None]) -> tuple[dict[Ref, Doc], R]:
            new, result = fn(docs[ref])
            return ({} if new is None else {ref: new}), result

        return await self.update_many([ref], one)

    @abc.abstractmethod
    async def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, Doc | None]:
        """Several documents of a kind in one read (None for each one absent)."""

    @abc.abstractmethod
    async def update_many(
        self, refs: Sequence[Ref], fn: ManyUpdater[R], *, ack: Ack | None = None
    ) -> R:
        """Read-modify-write several documents in one atomic transaction (retried on a
        concurrent change), dropping ``ack``'s inbox entries in it too."""

    @abc.abstractmethod
    async def claim_once(self, key: str) -> bool:
        """True for the first caller ever with this key, False for every other."""

    @abc.abstractmethod
    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew a lease; False when another owner holds it."""

    @abc.abstractmethod
    async def release(self, name: str, owner: str) -> None: ...


def _unchanged(docs: dict[Ref, Doc | None]) -> tuple[dict[Ref, Doc], None]:
    return {}, None
