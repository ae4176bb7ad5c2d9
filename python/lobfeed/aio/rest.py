"""REST depth snapshots: one GET, typed errors for rate limits and bad answers."""

from __future__ import annotations

import aiohttp

from lobfeed.exceptions import RateLimitedError, SnapshotError

# Binance answers 418 once an IP keeps going past 429s.
RATE_LIMIT_STATUSES = frozenset({418, 429})


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def fetch_snapshot(
    http: aiohttp.ClientSession, url: str, symbol: str, *, timeout: float = 10.0
) -> bytes:
    """The response body of a snapshot request, or a ``SnapshotError``."""
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.read()
            if resp.status in RATE_LIMIT_STATUSES:
                raise RateLimitedError(
                    f"{symbol}: snapshot rate-limited (HTTP {resp.status})",
                    symbol=symbol,
                    status=resp.status,
                    retry_after=_retry_after(resp.headers.get("Retry-After")),
                )
            if resp.status != 200:
                text = body[:200].decode("utf-8", "replace")
                raise SnapshotError(
                    f"{symbol}: snapshot failed with HTTP {resp.status}: {text}",
                    symbol=symbol,
                    status=resp.status,
                )
            return body
    except (aiohttp.ClientError, TimeoutError) as e:
        raise SnapshotError(f"{symbol}: snapshot request failed: {e!r}", symbol=symbol) from e
