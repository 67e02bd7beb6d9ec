"""`python -m harness.commands ...` is `spar ...`."""

import sys

from harness.commands import main

sys.exit(main())
