"""`python -m rlvr_bench`: the `rlvr-bench` command."""

import sys

from rlvr_bench.cli import main

sys.exit(main())
