"""Testing support for users of corral: the pytest plugin (plugin.py) and what its fixtures
hand out, VirtualTime (virtual_time.py) and Faults (faults.py). Imports nothing: pytest loads
the plugin, and with it this package, in every session where corral is installed."""
