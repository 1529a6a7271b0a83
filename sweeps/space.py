"""Search spaces: `sweeps/spaces/<algorithm>.yaml`, one distribution per hyperparameter.

    lr: {distribution: log_uniform, low: 1.0e-5, high: 3.0e-3}
    clip_eps: {distribution: uniform, low: 0.1, high: 0.3}
    epochs: {distribution: int, low: 1, high: 4}          # optional `step`, `log: true`
    value_estimator: {distribution: categorical, choices: [prior, calibrated]}

Names are fields of the algorithm's config class; every bound and choice is checked on load
against that class (its own validation included), so a bad space fails before any trial runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

SPACE_DIR = Path(__file__).parent / "spaces"
DISTRIBUTIONS = {
    "uniform": {"low", "high", "step"},
    "log_uniform": {"low", "high"},
    "int": {"low", "high", "step", "log"},
    "categorical": {"choices"},
}


@dataclass(frozen=True)
class Param:
    name: str
    distribution: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial):
        if self.distribution == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.distribution == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step,
                                   log=self.distribution == "log_uniform")

    def probe_values(self) -> list:
        return list(self.choices) if self.distribution == "categorical" else [self.low, self.high]


def space_path(algorithm: str) -> Path:
    return SPACE_DIR / f"{algorithm}.yaml"


def _number(value, where: str, integer: bool):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (not integer and not math.isfinite(value)):
        raise ValueError(f"{where}: expected {'an integer' if integer else 'a finite number'}, got {value!r}")
    return value


def parse_param(name: str, spec, where: str) -> Param:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping with `distribution`, got {spec!r}")
    kind = spec.get("distribution")
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"{where}: unknown distribution {kind!r}; known: {sorted(DISTRIBUTIONS)}")
    extra = sorted(set(spec) - DISTRIBUTIONS[kind] - {"distribution"})
    if extra:
        raise ValueError(f"{where}: key(s) {extra} do not apply to {kind}; allowed: {sorted(DISTRIBUTIONS[kind])}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: categorical needs a non-empty list `choices`, got {choices!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}: repeated choices in {choices}")
        return Param(name, kind, choices=tuple(choices))
    integer = kind == "int"
    for key in ("low", "high"):
        if key not in spec:
            raise ValueError(f"{where}: {kind} needs `low` and `high`")
    low, high = (_number(spec[k], f"{where}.{k}", integer) for k in ("low", "high"))
    if not low < high:
        raise ValueError(f"{where}: bad bounds, low {low!r} must be < high {high!r}")
    log = kind == "log_uniform" or bool(spec.get("log", False))
    if log and low <= 0:
        raise ValueError(f"{where}: bad bounds, a log distribution needs low > 0, got {low!r}")
    step = spec.get("step")
    if step is not None:
        step = _number(step, f"{where}.step", integer)
        if step <= 0 or step > high - low:
            raise ValueError(f"{where}.step: expected 0 < step <= high - low, got {step!r}")
        if log:
            raise ValueError(f"{where}: `step` and a log distribution cannot be combined")
    return Param(name, kind, low=low, high=high, step=step, log=log)


def load_space(algorithm: str, path: str | Path | None = None) -> list[Param]:
    """The validated search space of `algorithm` (default file: sweeps/spaces/<algorithm>.yaml)."""
    import algorithms
    from harness.config import PRESET_DIR, read_yaml, typed_values

    cls = algorithms.get(algorithm).config_class
    path = Path(path) if path else space_path(algorithm)
    if not path.exists():
        raise ValueError(f"{path}: no search space for {algorithm!r} (known: "
                         f"{', '.join(sorted(p.stem for p in SPACE_DIR.glob('*.yaml')))})")
    raw = read_yaml(path)
    if not raw:
        raise ValueError(f"{path}: empty search space")
    known = {f for f in cls.__dataclass_fields__}
    preset = PRESET_DIR / "algorithms" / f"{algorithm}.yaml"
    base = typed_values(cls, read_yaml(preset), str(preset)) if preset.exists() else {}
    space = []
    for name, spec in raw.items():
        where = f"{path}: field {name!r}"
        if name not in known:
            raise ValueError(f"{where}: unknown hyperparameter of {algorithm} ({cls.__name__}); "
                             f"known: {sorted(known)}")
        param = parse_param(name, spec, where)
        for value in param.probe_values():
            try:
                cls(**{**base, **typed_values(cls, {name: value}, where)})
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: value {value!r} rejected by {cls.__name__}: {err}") from None
        space.append(param)
    return space


def suggest(trial, space: list[Param]) -> dict:
    """The trial's hyperparameters, to pass as the run's `algo` overrides."""
    return {p.name: p.suggest(trial) for p in space}
