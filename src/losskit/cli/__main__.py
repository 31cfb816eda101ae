"""``python -m losskit.cli``: the same command line as ``losskit`` and ``python -m losskit``."""

import sys

from . import main

sys.exit(main())
