"""python -m tomwerk: the same command line as `tomwerk`."""

import sys

from tomwerk.cli import main

sys.exit(main())
