"""`python -m nodes.cli ...`: the `corral` command (the runner starts each node this way)."""

import sys

from nodes.cli import main

sys.exit(main())
