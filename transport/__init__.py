"""Bytes on the wire: codec, message validation, ZeroMQ and in-process transports."""

import logging

# A library prints nothing unasked: without this, Python's last-resort handler would put our
# warnings on an embedder's stderr. `corral run` configures the root logger itself.
logging.getLogger(__name__).addHandler(logging.NullHandler())
