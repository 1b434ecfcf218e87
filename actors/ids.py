"""UUIDv7 identifiers made from the injected clock and RNG, so a simulation seed replays ids.

A library (uuid6, uuid-utils) would read the system clock and OS entropy; simulation needs
both injected, and the layout is 20 lines of bit packing (RFC 9562 section 5.7).
"""

from __future__ import annotations

import random
import threading

from actors.clock import Clock


class IdFactory:
    """Monotonic UUIDv7 strings: 48-bit ms timestamp, 74 random bits, version and variant."""

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._last = (0, 0)

    def new(self) -> str:
        with self._lock:
            millis = int(self._clock.now() * 1000) & ((1 << 48) - 1)
            counter = self._rng.getrandbits(74)  # rand_a (12 bits) and rand_b (62 bits)
            if (millis, counter) <= self._last:  # same or earlier ms: count up from the last id
                millis, counter = self._last
                counter += 1
                if counter >> 74:
                    millis, counter = millis + 1, 0
            self._last = (millis, counter)
            rand_a, rand_b = counter >> 62, counter & ((1 << 62) - 1)
            value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0x2 << 62) | rand_b
            text = f"{value:032x}"  # canonical form without building a uuid.UUID (3x cheaper)
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
