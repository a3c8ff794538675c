"""``python -m recording.compliance``: the officer's command line."""

import sys

from recording.compliance.cli import main

sys.exit(main())
