"""``python -m certssb.tools.report``."""

import sys

from certssb.tools.report.cli import main

sys.exit(main())
