"""HTTP servers of a corral process: one ASGI app per server, each on a thread of its own."""
