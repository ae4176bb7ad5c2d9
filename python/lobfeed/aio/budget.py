"""``RequestBudget``: one per feed, so REST snapshots never go past the venue's request weight.

Venues count request weight per IP over a window (Binance: 2,400 a minute on futures, where a
1,000-level depth snapshot weighs 20). The budget keeps a log of what it let through and lets
a request go only while the weight sent within the last window stays under the limit, so no
window of the venue's, rolling or fixed, ever sees more. Requests wait in order of how long
their symbol has been without a book, the longest first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable


class RequestBudget:
    """Lets weighted requests through at most ``limit`` per ``window`` seconds, oldest first."""

    def __init__(
        self, limit: float, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sent: deque[tuple[float, int]] = deque()
        self._used = 0
        self._waiting: list[tuple[float, int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        #: Requests that had to wait, and the longest wait (seconds).
        self.waited = 0
        self.longest_wait = 0.0

    @property
    def used(self) -> int:
        """Weight sent within the last window."""
        self._expire(self._clock())
        return self._used

    async def acquire(self, weight: int, since: float) -> float:
        """Waits until ``weight`` fits in the window; ``since`` (a ``clock()`` time) orders the
        waiters, earliest first. Returns the seconds waited."""
        start = self._clock()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (since, next(self._order), weight, future))
        self._pump()
        await future
        waited = self._clock() - start
        if waited > 0:
            self.waited += 1
            self.longest_wait = max(self.longest_wait, waited)
        return waited

    def would_wait(self, weight: int) -> bool:
        self._expire(self._clock())
        return bool(self._waiting) or self._used + weight > self.limit

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.window:
            self._used -= self._sent.popleft()[1]

    def _pump(self) -> None:
        self._timer = None
        now = self._clock()
        self._expire(now)
        while self._waiting:
            _since, _order, weight, future = self._waiting[0]
            if future.done():  # its task was cancelled
                heapq.heappop(self._waiting)
                continue
            if self._used + weight > self.limit and self._sent:
                break
            heapq.heappop(self._waiting)
            self._sent.append((now, weight))
            self._used += weight
            future.set_result(None)
        if self._waiting and self._sent and self._timer is None:
            due = self._sent[0][0] + self.window - now
            self._timer = asyncio.get_running_loop().call_later(max(due, 0.001), self._pump)
