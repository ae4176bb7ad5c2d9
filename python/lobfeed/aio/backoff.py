"""Capped exponential backoff with jitter, injectable so tests can make it instant."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field


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
            raise ValueError("backoff needs 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield self.rng.uniform((1 - self.jitter) * delay, delay)
            delay = min(delay * self.factor, self.maximum)
