"""Capped exponential backoff with jitter, injectable so tests can make it instant."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from lobfeed.exceptions import ConfigError


@dataclass
class Backoff:
    """Delays of ``initial * factor**n`` seconds, capped at ``maximum``.

    Each delay is drawn uniformly from ``[(1 - jitter) * d, d]`` so that many clients
    reconnecting after the same outage do not arrive together.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ConfigError("backoff needs 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigError("jitter is a fraction between 0 and 1")

    def delay(self, attempt: int) -> float:
        """The jittered delay before try number ``attempt`` (1 is the first retry)."""
        exponent = max(attempt - 1, 0)
        # Capped before the power can overflow: past the cap it no longer matters.
        if self.factor > 1 and exponent > 64:
            base = self.maximum
        else:
            base = min(self.initial * self.factor**exponent, self.maximum)
        return self.rng.uniform((1 - self.jitter) * base, base)

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield self.rng.uniform((1 - self.jitter) * delay, delay)
            delay = min(delay * self.factor, self.maximum)
