"""`python -m platform_tools …` (the image's entry point is the `platform-tools` script)."""

import sys

from platform_tools.cli import main

sys.exit(main())
