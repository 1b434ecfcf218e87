"""UUIDv7 identifiers made from the injected clock and RNG, so a simulation seed replays ids.

A library (uuid6, uuid-utils) would read the system clock and OS entropy; simulation needs
both injected, and the layout is 20 lines of bit packing (RFC 9562 section 5.7).
"""

from __future__ import annotations

import random
import threading
import uuid

from actors.clock import Clock


class IdFactory:
    """Monotonic UUIDv7 strings: 48-bit ms timestamp, 74 random bits, version and variant."""

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._last = 0

    def new(self) -> str:
        with self._lock:
            millis = int(self._clock.now() * 1000) & ((1 << 48) - 1)
            value = (millis << 80) | self._rng.getrandbits(80)
            value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
            value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
            if value <= self._last:  # keep ids strictly increasing within one process
                value = self._last + 1
            self._last = value
            return str(uuid.UUID(int=value))
