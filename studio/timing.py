"""Per-stage timings: `laps = Laps(); ...; laps.lap("faces"); laps.timings -> {"faces": seconds}`."""
from __future__ import annotations

import time


class Laps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._t
        self._t = now
