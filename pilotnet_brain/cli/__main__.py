"""`python -m pilotnet_brain.cli`: the same as the `pilotnet-brain` command."""

import sys

from pilotnet_brain.cli.main import main

sys.exit(main())
