"""``python -m certssb.tools.compare``."""

import sys

from certssb.tools.compare.cli import main

sys.exit(main())
