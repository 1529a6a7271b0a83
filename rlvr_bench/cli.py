"""`rlvr-bench`: pretrain | train | compare | sweep | report | eval | value-table.

The harness's commands (harness/cli.py) and `sweep` (sweeps/cli.py), which builds on the harness;
`python -m harness.cli` has the harness's alone (compare's DDP runs re-launch `train` through it).
"""

from __future__ import annotations

import sys

from harness import cli as harness_cli
from sweeps.cli import add_sweep_parser

_AFTER_COMPARE = harness_cli.COMMANDS.index(harness_cli.add_compare_parser) + 1  # `--help` lists sweep after compare
COMMANDS = (*harness_cli.COMMANDS[:_AFTER_COMPARE], add_sweep_parser, *harness_cli.COMMANDS[_AFTER_COMPARE:])


def build_parser(argv: list[str] | None = None):
    return harness_cli.build_parser(COMMANDS, argv)


def main(argv: list[str] | None = None) -> int:
    return harness_cli.main(argv, COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
