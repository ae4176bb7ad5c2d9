"""REST depth snapshots: one GET, its body read in chunks under a cap, typed errors.

A venue's answer is sorted into what retrying may fix (429/418 with their ``Retry-After``, 5xx,
timeouts, resets: ``SnapshotError``/``RateLimitedError``) and what it cannot (400/404: the
symbol does not exist or the request is wrong, ``SymbolRejectedError``). Whether a 200 body is
really a snapshot is for the session to say when it is handed the body.

:func:`open_session` makes the ``aiohttp`` session every snapshot goes through, with
``ConnectOptions.proxy`` applied (an HTTP proxy natively, SOCKS through aiohttp-socks).
"""

from __future__ import annotations

import aiohttp

from lobfeed.aio import proxy as proxies
from lobfeed.exceptions import RateLimitedError, SnapshotError, SymbolRejectedError

# Binance answers 418 once an IP keeps going past 429s.
RATE_LIMIT_STATUSES = frozenset({418, 429})
# Asking again cannot turn these into a snapshot.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 410})

_CHUNK = 64 * 1024


def open_session(proxy: str | None, rest_url: str | None) -> aiohttp.ClientSession:
    """The session REST snapshots use: through ``proxy`` (a ``ConnectOptions.proxy`` value;
    ``"env"`` is looked up for ``rest_url`` now), never through a proxy the environment names
    otherwise (``trust_env=False``)."""
    chosen = proxies.resolve(proxy, rest_url)
    if chosen is None:
        return aiohttp.ClientSession(trust_env=False)
    if chosen.socks:
        from aiohttp_socks import ProxyConnector, ProxyType

        kind = ProxyType.SOCKS5 if chosen.scheme.startswith("socks5") else ProxyType.SOCKS4
        connector = ProxyConnector(
            host=chosen.host,
            port=chosen.port,
            proxy_type=kind,
            username=chosen.username,
            password=chosen.password,
            rdns=chosen.scheme in ("socks5h", "socks4a"),
        )
        return aiohttp.ClientSession(connector=connector, trust_env=False)
    # aiohttp takes the credentials from the URL (proxy_auth is deprecated); every message
    # fetch_snapshot makes from aiohttp's errors has URL passwords masked.
    return aiohttp.ClientSession(proxy=chosen.url(), trust_env=False)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def fetch_snapshot(
    http: aiohttp.ClientSession,
    url: str,
    symbol: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 16 * 1024 * 1024,
    method: str = "GET",
) -> bytes:
    """The body of a 200 answer to ``url``, at most ``max_bytes`` long, or a ``SnapshotError``.
    ``method``: ``POST`` for venues that hand out connection tokens that way (no body sent)."""
    try:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with http.request(method, url, timeout=limit) as resp:
            status = resp.status
            if status in RATE_LIMIT_STATUSES:
                raise RateLimitedError(
                    f"{symbol}: snapshot rate-limited (HTTP {status}) by {url}",
                    symbol=symbol,
                    status=status,
                    retry_after=_retry_after(resp.headers.get("Retry-After")),
                )
            if status != 200:
                text = (await resp.content.read(200)).decode("utf-8", "replace")
                kind = SymbolRejectedError if status in PERMANENT_STATUSES else SnapshotError
                raise kind(
                    f"{symbol}: snapshot request {url} answered HTTP {status}: {text}",
                    symbol=symbol,
                    status=status,
                )
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise SnapshotError(
                    f"{symbol}: snapshot body of {resp.content_length} bytes from {url} is over "
                    f"the {max_bytes}-byte limit (ConnectOptions.max_body_bytes)",
                    symbol=symbol,
                    status=status,
                )
            # Read in chunks so that a body without Content-Length is refused at the cap, not
            # after it was held in memory whole.
            parts: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise SnapshotError(
                        f"{symbol}: snapshot body from {url} passed the {max_bytes}-byte limit "
                        "(ConnectOptions.max_body_bytes)",
                        symbol=symbol,
                        status=status,
                    )
                parts.append(chunk)
            return b"".join(parts)
    except (aiohttp.ClientError, TimeoutError) as e:
        # A proxy's refusal (aiohttp's ClientHttpProxyError) carries its status.
        answered = e.status if isinstance(e, aiohttp.ClientResponseError) else None
        detail = proxies.mask(f"{type(e).__name__}: {e}")
        raise SnapshotError(
            f"{symbol}: snapshot request {url} failed: {detail}", symbol=symbol, status=answered
        ) from e
