# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small pieces both agents need: retry and update pacing, option defaults, logging."""

from __future__ import annotations

import logging
import os
import random
import threading
from typing import TypeVar

_Default = TypeVar("_Default", str, None)


def env_default(name: str, default: _Default) -> str | _Default:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class Backoff:
    """Exponential backoff with jitter, capped, for reconnect loops that must never give up."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def peek(self) -> float:
        return self.delay

    def reset(self) -> None:
        self.delay = self.first

    def sleep(self, stop_event: threading.Event) -> None:
        # Jitter spreads reconnects of many agents after a shared outage.
        stop_event.wait(self.delay * random.uniform(0.8, 1.2))
        self.delay = min(self.cap, self.delay * 2)


class Pacer:
    """Paces updates: a few at once after a quiet moment, then one per ``interval`` while changes
    keep coming.

    A token bucket: one token per ``interval`` seconds, at most ``burst`` saved, one spent per
    update. A change after a quiet moment (or right after one other) is applied at once; a
    sustained stream of changes costs at most one update per ``interval`` seconds, each taking
    every change that came meanwhile. ``interval`` 0 never waits. Times are seconds of one
    monotonic clock, passed in by the caller.
    """

    def __init__(self, interval: float, burst: int = 3) -> None:
        if interval < 0 or burst < 1:
            raise ValueError(f"Pacer needs interval >= 0 and burst >= 1, not {interval} and {burst}")
        self.interval = interval
        self.burst = burst
        self.tokens = float(burst)
        self.stamp: float | None = None

    def _refill(self, now: float) -> None:
        if self.stamp is not None and self.interval > 0:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) / self.interval)
        self.stamp = now

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next update may run (0: at once)."""
        if self.interval == 0:
            return 0.0
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.interval

    def spend(self, now: float) -> None:
        """One update runs at ``now``."""
        if self.interval > 0:
            self._refill(now)
            self.tokens = max(0.0, self.tokens - 1)
