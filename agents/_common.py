# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small pieces both agents need: retry pacing, option defaults, logging."""

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
