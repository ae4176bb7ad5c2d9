"""Busy polling: the event loop polls its sockets instead of sleeping between frames.

An idle loop sleeps in ``epoll_wait``; waking it when a frame lands costs tens of microseconds
on a virtual machine, more than everything lobfeed does with the frame. While a callback is
queued the loop polls with a zero timeout instead, so keeping one callback queued that queues
itself again keeps the loop awake: frames are read as soon as the kernel has them, for the
price of one core kept busy. ``Feed(busy_poll=True)`` asks for it while it runs.

Several feeds on one loop share one spinner: it runs while any of them wants it.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["BusyPoll"]


class _Spinner:
    __slots__ = ("handle", "loop", "users")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.users = 0
        self.handle: asyncio.Handle | None = None

    def _tick(self) -> None:
        self.handle = self.loop.call_soon(self._tick) if self.users else None

    def acquire(self) -> None:
        self.users += 1
        if self.handle is None:
            self.handle = self.loop.call_soon(self._tick)

    def release(self) -> None:
        self.users -= 1
        if not self.users and self.handle is not None:
            self.handle.cancel()
            self.handle = None


_spinners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Spinner] = (
    weakref.WeakKeyDictionary()
)


class BusyPoll:
    """Keeps the running loop polling for as long as the ``with`` block lasts."""

    def __init__(self) -> None:
        self._spinner: _Spinner | None = None

    def __enter__(self) -> BusyPoll:
        loop = asyncio.get_running_loop()
        spinner = _spinners.get(loop)
        if spinner is None:
            spinner = _spinners[loop] = _Spinner(loop)
        spinner.acquire()
        self._spinner = spinner
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._spinner is not None:
            self._spinner.release()
            self._spinner = None

    @staticmethod
    def spinning(loop: asyncio.AbstractEventLoop) -> bool:
        """Whether ``loop`` is being kept polling now."""
        spinner = _spinners.get(loop)
        return spinner is not None and spinner.handle is not None
