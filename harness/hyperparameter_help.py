"""`rlvr-bench train --algorithm basis --help`: the named algorithm's hyperparameters in the help.

Hyperparameters are set with `--set KEY=VALUE`; their names, types and docstrings come from the
algorithm's `config_class` (a dataclass), their values from the presets the command reads. The
algorithm is named on the same command line as `--help`, so it is read from there before parsing
(`help_request`), in either order (`--help --algorithm basis` too).
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import fields

HELP_FLAGS = ("-h", "--help")


def help_request(argv: list[str]) -> tuple[str, list[str], str | None] | None:
    """(command, algorithms named by --algorithm/--algorithms, --preset or None) when `argv` asks
    for a subcommand's help; else None."""
    if not argv or argv[0].startswith("-") or not any(a in HELP_FLAGS for a in argv[1:]):
        return None
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    pre.add_argument("--algorithm", action="append", default=[])
    pre.add_argument("--algorithms", nargs="+", default=[])
    pre.add_argument("--preset")
    try:
        known, _ = pre.parse_known_args(argv[1:])
    except argparse.ArgumentError:  # e.g. `--algorithm` without a name: the real parser says so
        return argv[0], [], None
    return argv[0], [*known.algorithm, *known.algorithms], known.preset


def hyperparameter_help(name: str, preset: str | None) -> str:
    """Algorithm `name`'s hyperparameters, one per entry: name, type, value under `preset` (the
    dataclass default, then the algorithm's preset, then the experiment preset's `algo:`), docstring."""
    import algorithms
    from harness.config import algorithm_config, load_run_config
    from harness.field_docs import field_docs, plain

    cls = algorithms.get(name).config_class
    config = algorithm_config(load_run_config(preset, {"algorithm": name}))
    docs = field_docs(cls)
    where = f"--preset {preset}" if preset else "its preset harness/presets/algorithms"
    lines = [f"{name} hyperparameters ({cls.__name__}; set with --set KEY=VALUE; values under {where}):"]
    for f in fields(cls):
        lines.append(f"  {f.name} ({str(f.type)}) = {getattr(config, f.name)!r}")
        if f.name in docs:
            lines += textwrap.wrap(plain(docs[f.name]), width=100, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def how_to_list(command: str) -> str:
    """The line a help without a named algorithm ends with."""
    import algorithms

    flag = "--algorithms" if command == "compare" else "--algorithm"
    return (f"an algorithm's hyperparameters (set them with --set KEY=VALUE): rlvr-bench {command} {flag} NAME "
            f"--help, NAME one of {', '.join(algorithms.names())}")


def add_hyperparameter_help(p: argparse.ArgumentParser, command: str, names: list[str], preset: str | None) -> None:
    """Append to subparser `p`'s epilog the hyperparameters of `names` (a line saying how to list
    them when there are none); `preset` falls back to the command's own default."""
    if preset is None:
        preset = getattr(p, "default_preset", None)
    sections = [hyperparameter_help(name, preset) for name in dict.fromkeys(names)] or [how_to_list(command)]
    p.epilog = "\n\n".join([*([p.epilog.rstrip()] if p.epilog else []), *sections])
    p.formatter_class = argparse.RawDescriptionHelpFormatter
