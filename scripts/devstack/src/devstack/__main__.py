"""`python -m devstack` = the `devstack` CLI."""

import sys

from devstack.cli import main

sys.exit(main())
