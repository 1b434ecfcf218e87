"""Request ids a client gives its enqueues and workflows (docs/PROTOCOL.md extension): a
resend of a request whose reply was lost makes nothing new."""

from __future__ import annotations

import secrets

REQUEST_ID_BYTES = 12  # random bytes in a request id: 96 bits, 16 characters once encoded


def new_request_id() -> str:
    """A fresh enqueue request id (docs/PROTOCOL.md extension): 96 random bits in 16 URL-safe
    characters. Every job the request makes keeps it in its store record, so it is short: a
    uuid4 in hex (32) cost 16 bytes more per queued job (bench/million.py)."""
    while True:  # never with a leading "-": a command line would take it for an option
        made = secrets.token_urlsafe(REQUEST_ID_BYTES)
        if not made.startswith("-"):
            return made
