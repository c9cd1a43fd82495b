"""`python -m mailtwin.demo`: the demo without going through the CLI."""

import sys

from mailtwin.demo import main

raise SystemExit(main(sys.argv[1:]))
