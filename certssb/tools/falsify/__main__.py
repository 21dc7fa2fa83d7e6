"""``python -m certssb.tools.falsify``."""

from certssb.tools.falsify.cli import main

raise SystemExit(main())
