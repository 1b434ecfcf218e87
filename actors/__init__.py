"""The pykka actors of corral and the pure domain cores they own. No sockets here."""

import logging

# A library prints nothing unasked: without this, Python's last-resort handler would put our
# warnings on an embedder's stderr. `corral run` configures the root logger itself.
logging.getLogger(__name__).addHandler(logging.NullHandler())
