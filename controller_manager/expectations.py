"""Controller expectations (client-go's ``ControllerExpectations``).

A controller that creates 5 pods must not create 5 more because its informer has not yet seen
the first 5. Before writing, it records how many creations/deletions it expects to *observe*
for the owner; informer handlers lower the counts as the objects arrive; ``satisfied(key)`` is
False — so the controller only updates status and does not act again — until every expected
event was seen, or the expectations expired (5 minutes: a lost event must not stall it forever).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    adds: int
    deletes: int
    timestamp: float
    deleted_uids: set[str]


class ControllerExpectations:
    def __init__(self, *, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True  # nothing recorded (new owner, or after a restart): act on what the cache says
        if exp.adds <= 0 and exp.deletes <= 0:
            return True
        return self.clock() - exp.timestamp > self.timeout

    def expect_creations(self, key: str, adds: int) -> None:
        self._items[key] = _Expectation(adds, 0, self.clock(), set())

    def expect_deletions(self, key: str, uids: list[str]) -> None:
        self._items[key] = _Expectation(0, len(uids), self.clock(), set(uids))

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.adds -= 1

    def deletion_observed(self, key: str, uid: str = "") -> None:
        exp = self._items.get(key)
        if exp is None:
            return
        if uid and exp.deleted_uids and uid not in exp.deleted_uids:
            return
        exp.deleted_uids.discard(uid)
        exp.deletes -= 1

    def lower(self, key: str, *, adds: int = 0, deletes: int = 0) -> None:
        """A write we expected to observe failed (e.g. create rejected): expect one fewer."""
        exp = self._items.get(key)
        if exp is not None:
            exp.adds -= adds
            exp.deletes -= deletes

    def delete(self, key: str) -> None:
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._items.get(key)
        return (exp.adds, exp.deletes) if exp else (0, 0)
