# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small pieces both agents need: retry pacing, option defaults, logging."""

from __future__ import annotations

import logging
import os
import random


def env_default(name, default):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def setup_logging(level="INFO"):
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class Backoff:
    """Exponential backoff with jitter, capped, for reconnect loops that must never give up."""

    def __init__(self, first=0.2, cap=5.0):
        self.first = first
        self.cap = cap
        self.delay = first

    def peek(self):
        return self.delay

    def reset(self):
        self.delay = self.first

    def sleep(self, stop_event):
        # Jitter spreads reconnects of many agents after a shared outage.
        stop_event.wait(self.delay * random.uniform(0.8, 1.2))
        self.delay = min(self.cap, self.delay * 2)
