"""``python -m hub``: the ``hub`` command, run by this interpreter (an environment without the console script)."""

import sys

from hub.core.cli import main

sys.exit(main())
