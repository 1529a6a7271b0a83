"""The run-setting flags of `train`, `compare` and `sweep`, generated from `RunConfig`.

Every field of `RunConfig` is a flag `--field-name` (type from its annotation, help from the first
sentence of its docstring, choices where the config checks a fixed set), unless `NOT_FLAGS` names it
with the reason; a new field is a flag without editing the command line. A flag left out is None,
which `load_run_config` reads as "the preset's value"; `run_overrides` returns exactly the dict it
takes. Algorithm hyperparameters are not flags: `--set KEY=VALUE`, listed by `--algorithm NAME --help`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

import yaml

from harness.config import ACCELERATORS, EVAL_SPLITS, PRECISIONS, STRATEGIES, RunConfig
from harness.engines import ENGINES
from harness.field_docs import field_docs, first_sentence, plain
from harness.prompts import STYLES

NOT_FLAGS = {
    "algorithm": "each command has its own: train/sweep --algorithm, compare --algorithms",
    "seed": "each command has its own: train/sweep --seed, compare --seeds",
    "algo": "the algorithm's hyperparameters: --set KEY=VALUE",
    "per_algorithm": "a mapping by algorithm name, in a preset (sweep --export writes one)",
    "task_options": "a mapping of the task's load() arguments, in a preset",
    "model_shape": "a mapping (the model's config.json shape), in a preset",
    "engine_options": "a mapping by engine, in a preset",
}
# Spellings older than the generated ones, kept because commands and docs use them; each field's
# generated `--field-name` works too.
ALIASES = {"max_steps": ("--steps",)}
# The fixed sets RunConfig.__post_init__ and validate_run check a value against.
CHOICES = {"strategy": STRATEGIES, "accelerator": ACCELERATORS, "precision": PRECISIONS,
           "eval_split": EVAL_SPLITS, "engine": ENGINES, "prompt_style": STYLES}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def flag_fields() -> list:
    """RunConfig's fields that are flags, in declaration order; a field whose type has no flag form
    and that `NOT_FLAGS` does not list is an error naming it."""
    out = []
    for f in fields(RunConfig):
        if f.name in NOT_FLAGS:
            continue
        if str(f.type).replace(" | None", "") not in _TYPES:
            raise TypeError(f"RunConfig.{f.name}: type {f.type} has no command-line form; list it in "
                            f"harness/run_flags.py NOT_FLAGS with the reason")
        out.append(f)
    return out


def option_strings(name: str) -> list[str]:
    """The flag spellings of field `name`: `--field-name` and its older aliases."""
    return [*ALIASES.get(name, ()), "--" + name.replace("_", "-")]


def add_run_flags(p: argparse.ArgumentParser, default_preset: str | None = "default") -> None:
    """`--preset`, a flag per RunConfig setting and `--set`, in a group of their own. `default_preset`
    is the preset the command reads without `--preset` (the help's hyperparameter values follow it)."""
    p.default_preset = default_preset
    group = p.add_argument_group("run settings (a flag left out keeps the preset's value)")
    default = (f"the preset {default_preset!r}" if default_preset else
               "none: the dataclass defaults and the algorithm's preset")
    group.add_argument("--preset",
                       help=f"experiment preset: a name in harness/presets or a YAML path (default: {default})")
    docs = field_docs(RunConfig)
    for f in flag_fields():
        kind = _TYPES[str(f.type).replace(" | None", "")]
        text = plain(first_sentence(docs.get(f.name, ""))).replace("%", "%%")
        if kind is bool:  # --x and --no-x, so a command line can undo a preset's value either way
            group.add_argument(*option_strings(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=text)
        else:
            group.add_argument(*option_strings(f.name), dest=f.name, type=kind, choices=CHOICES.get(f.name),
                               help=text)
    group.add_argument("--set", dest="algo", action="append", metavar="KEY=VALUE",
                       help="override an algorithm hyperparameter, e.g. --set lr=2e-4 (repeatable); "
                            "--algorithm NAME --help lists NAME's")


def _parse_value(text: str):
    """Numbers as numbers (YAML 1.1 reads `1e-3` as a string), else as YAML reads them."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def key_values(pairs: list[str] | None, flag: str = "--set", raw: bool = False) -> dict:
    """{KEY: value} from repeated `flag KEY=VALUE` arguments (values as `_parse_value` reads them,
    or the strings themselves with `raw`)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = value if raw else _parse_value(value)
    return out


def run_overrides(args: argparse.Namespace) -> dict:
    """The overrides `load_run_config(preset, overrides)` takes: every run flag (None: not given)
    and `algo` from `--set`."""
    values = {f.name: getattr(args, f.name) for f in flag_fields()}
    values["algo"] = key_values(args.algo)
    return values


def check_set_keys(algo: dict, algorithm_names: list[str]) -> None:
    """`--set` keys every named algorithm has, before any run starts; the error lists the keys it
    does have, and points a run setting to its own flag."""
    if not algo:
        return
    import algorithms

    run_fields = {f.name for f in fields(RunConfig)}
    flagged = {f.name for f in flag_fields()}
    for name in algorithm_names:
        known = sorted(f.name for f in fields(algorithms.get(name).config_class))
        unknown = sorted(set(algo) - set(known))
        if not unknown:
            continue
        settings = [k for k in unknown if k in run_fields]
        hint = "".join(f"; {k} is a run setting: " + (option_strings(k)[0] if k in flagged else NOT_FLAGS[k])
                       for k in settings)
        raise ValueError(f"--set: {name} has no hyperparameter {', '.join(unknown)}{hint}; "
                         f"{name}'s hyperparameters: {', '.join(known)}")
