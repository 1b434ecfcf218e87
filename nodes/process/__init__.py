"""Nodes as operating-system processes: `corral run FILE` (`runner`: every node of a file, each
in its own child process, supervised) and `corral run FILE --node NAME` (`node`: one node in
this process until a signal stops it)."""
