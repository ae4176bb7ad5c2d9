"""The picows transport for `Feed`: a Cython websocket client that hands frames to a callback.

It costs about half the websockets client's per-frame time on loopback (see the README's
latency table), so a Feed created with ``transport="picows"`` reads frames here and hands
each one to the same ``Feed._on_frame``. picows is optional (``pip install picows``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class PicowsLink:
    """What the Feed needs of a connection: send text, close, abort, wait for the end."""

    def __init__(self, transport: Any, closed: asyncio.Future[bool]) -> None:
        self.transport = transport
        self.closed = closed

    async def send(self, message: str) -> None:
        from picows import WSMsgType

        self.transport.send(WSMsgType.TEXT, message.encode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        from picows import WSCloseCode

        self.transport.send_close(WSCloseCode(code), reason.encode())
        self.transport.disconnect()
        await self.transport.wait_disconnected()

    def abort(self) -> None:
        self.transport.disconnect(graceful=False)


async def connect(
    url: str,
    on_frame: Callable[[bytes], None],
    *,
    max_frame_bytes: int,
    open_timeout: float = 10,
) -> PicowsLink:
    """Opens a connection whose text and binary frames go to ``on_frame``.

    The returned link's ``closed`` future resolves to True when the server closed with 1000
    (a normal end) and to False when the connection was lost otherwise.
    """
    from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    loop = asyncio.get_running_loop()
    closed: asyncio.Future[bool] = loop.create_future()
    parts: list[bytes] = []

    class Listener(WSListener):
        clean = False

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            kind = frame.msg_type
            if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
                if frame.fin:
                    on_frame(frame.get_payload_as_bytes())
                else:
                    parts.append(frame.get_payload_as_bytes())
            elif kind == WSMsgType.CONTINUATION:
                parts.append(frame.get_payload_as_bytes())
                if frame.fin:
                    whole = b"".join(parts)
                    parts.clear()
                    on_frame(whole)
            elif kind == WSMsgType.CLOSE:
                self.clean = frame.get_close_code() == WSCloseCode.OK
                transport.send_close(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if not closed.done():
                closed.set_result(self.clean)

    transport, _ = await ws_connect(
        Listener,
        url,
        websocket_handshake_timeout=open_timeout,
        max_frame_size=max_frame_bytes,
        enable_auto_pong=True,
    )
    return PicowsLink(transport, closed)
