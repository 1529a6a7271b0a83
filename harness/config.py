"""Typed run configuration and the YAML presets shipped inside the package.

Resolution order, later wins: dataclass defaults < the algorithm's preset
(`presets/algorithms/<name>.yaml`) < the experiment preset (`presets/<name>.yaml`) < flags.
Unknown keys and wrong types are errors that name the file and field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).parent / "presets"
STRATEGIES = ("auto", "ddp", "fsdp")
ACCELERATORS = ("auto", "cpu", "gpu")
PRECISIONS = ("32-true", "bf16-mixed", "bf16-true")  # Lightning's names
EVAL_SPLITS = ("test", "validation")


@dataclass
class RunConfig:
    """One training run: (algorithm, seed) on a task and model."""

    algorithm: str = "grpo"
    """A registered algorithm name (algorithms.names()) or package.module:ClassName."""
    task: str = "arithmetic"
    """A registered task name (tasks.names())."""
    task_options: dict = field(default_factory=dict)
    """Extra arguments of the task's `load` (e.g. `levels: [1, 2]` for arithmetic)."""
    model: str = "tiny"
    """`tiny`, `smollm2-135m`, a local Hugging Face folder or a hub id."""
    model_shape: dict = field(default_factory=dict)
    """The model's shape for `--dry-run`'s memory plan when its config is not on this machine:
    hidden_size, num_hidden_layers, intermediate_size, num_attention_heads, num_key_value_heads,
    vocab_size, tie_word_embeddings (as in its config.json)."""
    engine: str = "auto"
    """`hf` (Hugging Face generate), `vllm`, or `auto` (vLLM where installed, else hf)."""
    engine_options: dict = field(default_factory=dict)
    """vLLM knobs (harness.engines.vllm.VLLMOptions): kv_cache_gb (CPU), gpu_memory_utilization,
    tensor_parallel_size, max_model_len, enforce_eager, dtype."""
    prompt_style: str = "plain"
    """How a task's prompt becomes the model's input: `plain` text or the tokenizer's `chat` template."""
    seed: int = 0
    data_dir: str | None = None
    """Local benchmark data folder (else $RLVR_DATA_DIR, else the hub)."""
    max_steps: int = 40
    """RL steps (one rollout batch each); a budget may stop the run earlier."""
    prompts_per_step: int = 16
    """Training prompts per RL step (unless `samples_per_step` is set)."""
    samples_per_step: int | None = None
    """If set, prompts per step = samples_per_step / the algorithm's samples per prompt, so
    algorithms with one rollout per prompt see as many samples per step as GRPO with groups."""
    train_limit: int | None = None
    """Train on the first this many prompts of the train split (default: all of them)."""
    eval_limit: int = 200
    """Held-out prompts evaluated: the first this many of the held-out split."""
    eval_split: str = "test"
    """Held-out examples: `test`, or `validation` carved from the train split (tasks.validation; the
    run then trains on the rest of train and never reads test). Sweeps score trials on validation."""
    eval_samples: int = 1
    """Samples per held-out prompt; pass@1 is their mean."""
    eval_temperature: float = 1.0
    """Sampling temperature of the held-out evaluation."""
    eval_max_new_tokens: int | None = None
    """Defaults to the algorithm's max_new_tokens."""
    eval_every: int = 0
    """Evaluate every this many steps (0: only before and after training)."""
    diag_every: int = 0
    """Run the value-estimation diagnostic at step 0 and every this many steps (0: off). Not charged."""
    diag_probe: int = 64
    """Probe prompts of the diagnostic: the first `diag_probe` examples of the held-out split
    (`eval_split`; they may overlap the evaluation set; neither is trained on)."""
    diag_mc_samples: int = 16
    """Rollouts per probe prompt for its Monte-Carlo value (on top of the 8 the estimators use)."""
    budget: str | None = None
    """`samples=N`, `tokens=N`, `flops=N` or `seconds=N`."""
    charge_offline: bool = True
    """Charge offline stages (A*-PO stage 1, BASIS's prior) to the budget; else report them apart."""
    experiment: str = "rlvr-bench"
    """MLflow experiment name, and the folder <output_dir>/<experiment> of its runs' records."""
    output_dir: str = "results"
    """Folder for <experiment>/runs, checkpoints and the default MLflow store."""
    tracking_uri: str | None = None
    """MLflow tracking URI; default a SQLite store under output_dir."""
    threads: int | None = None
    """torch intra-op threads (default: torch's choice)."""
    algo: dict = field(default_factory=dict)
    """Overrides of the algorithm's hyperparameters (its config class validates them)."""
    checkpoint_every: int = 10
    """Checkpoint every this many steps and at the end, under <output_dir>/<experiment>/checkpoints
    (0: only at the end); `--resume` continues from the last one."""
    keep_checkpoint: bool = False
    """Keep the last checkpoint once the run's record is written (to extend the run later with
    `--resume` and more steps); by default it is deleted then, it can be large."""
    max_nonfinite_steps: int = 3
    """Stop the run (after writing a checkpoint) when this many steps in a row had a NaN/inf loss;
    a single one only skips its update."""
    strategy: str = "auto"
    """Lightning strategy: auto (one process) | ddp | fsdp."""
    devices: int = 1
    """Processes per node (DDP/FSDP); prompts of a step are sharded across all of them."""
    num_nodes: int = 1
    """Nodes (DDP/FSDP)."""
    accelerator: str = "auto"
    """Lightning accelerator: auto (a GPU where one is visible, else the CPU) | cpu | gpu."""
    precision: str = "32-true"
    """Lightning precision: 32-true | bf16-mixed (fp32 weights, bf16 autocast) | bf16-true (bf16 weights);
    the frozen reference is kept in bf16 under both bf16 settings, log-probs and losses in float32."""
    per_algorithm: dict = field(default_factory=dict)
    """Overrides by algorithm name, `{grpo: {lr: 1e-4}}`, applied before `algo` to that algorithm
    only (a tuned preset written by `rlvr-bench sweep --export` carries one section per algorithm).
    A section may also set the run's length (`max_steps`, `budget`: PER_ALGORITHM_RUN_KEYS) for that
    algorithm; the command line's `--steps` and `--budget` still win."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "prompts_per_step", "eval_limit", "eval_samples", "max_nonfinite_steps",
                     "devices", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "eval_temperature"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("train_limit", "threads", "eval_max_new_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or unset), got {getattr(self, name)}")
        if self.eval_split not in EVAL_SPLITS:
            raise ValueError(f"eval_split must be one of {EVAL_SPLITS}, got {self.eval_split!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator must be one of {ACCELERATORS}, got {self.accelerator!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.budget is not None:
            from harness.budget import Budget

            Budget.parse(self.budget, where="budget")
        if self.samples_per_step is not None and self.samples_per_step < 1:
            raise ValueError(f"samples_per_step must be >= 1, got {self.samples_per_step}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
        unknown = sorted(set(self.per_algorithm) - set(_algorithm_names())) if self.per_algorithm else []
        if unknown:
            raise ValueError(f"per_algorithm: unknown algorithm(s) {unknown}; known: {_algorithm_names()}")
        if self.diag_every < 0 or self.diag_probe < 2 or self.diag_mc_samples < 1:
            raise ValueError(f"diag_every must be >= 0, diag_probe >= 2 and diag_mc_samples >= 1, got "
                             f"{self.diag_every}, {self.diag_probe}, {self.diag_mc_samples}")

    def tracking(self) -> str:
        from harness.tracking import resolve_tracking_uri

        return resolve_tracking_uri(self.tracking_uri, self.output_dir)


def _algorithm_names() -> list[str]:
    import algorithms

    return algorithms.names()


def _check_type(value: Any, annotation: str, where: str) -> Any:
    """Light type check for YAML and flag values; ints are accepted where floats are expected."""
    expected = {"int": int, "float": (int, float), "str": str, "bool": bool, "dict": dict}
    base = annotation.replace(" | None", "")
    if value is None and "None" in annotation:
        return value
    kind = expected.get(base)
    if kind is None:
        return value
    if isinstance(value, bool) and base != "bool":
        raise ValueError(f"{where}: expected {base}, got {value!r}")
    if not isinstance(value, kind):
        raise ValueError(f"{where}: expected {base}, got {type(value).__name__} {value!r}")
    return float(value) if base == "float" else value


def typed_values(cls, values: dict, where: str) -> dict:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    return {k: _check_type(v, str(known[k].type), f"{where}: field {k!r}") for k, v in values.items()}


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def preset_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = PRESET_DIR / f"{name}.yaml"
    if not candidate.exists():
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(preset_names())} (or a path to a .yaml file)")
    return candidate


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


PER_ALGORITHM_RUN_KEYS = ("max_steps", "budget")
"""Run settings a preset's `per_algorithm` section may set for one algorithm: how long it runs
(the equal-prompts preset gives one-rollout algorithms GRPO's seconds in twice its steps)."""


def load_run_config(preset: str | None = None, overrides: dict | None = None) -> RunConfig:
    values: dict = {}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if preset:
        path = preset_path(preset)
        raw = read_yaml(path)
        raw.pop("compare", None)  # the comparison grid, read by `compare`
        values.update(typed_values(RunConfig, raw, str(path)))
        algorithm = overrides.get("algorithm", values.get("algorithm"))
        section = (values.get("per_algorithm") or {}).get(algorithm)
        if isinstance(section, dict):  # its run settings, below the command line's
            values.update(typed_values(RunConfig, {k: v for k, v in section.items() if k in PER_ALGORITHM_RUN_KEYS},
                                       f"{path}: per_algorithm.{algorithm}"))
    if not isinstance(overrides.get("algo", {}), dict):
        raise ValueError(f"command line: field 'algo': expected dict, got {overrides['algo']!r}")
    algo = {**values.get("algo", {}), **overrides.pop("algo", {})}
    values.update(typed_values(RunConfig, overrides, "command line"))
    values["algo"] = algo
    return RunConfig(**values)


def algorithm_config(run: RunConfig):
    """The algorithm's typed config: its preset, then the run's `algo` overrides."""
    import algorithms

    cls = algorithms.get(run.algorithm).config_class
    path = PRESET_DIR / "algorithms" / f"{run.algorithm}.yaml"
    values = typed_values(cls, read_yaml(path), str(path)) if path.exists() else {}
    section = run.per_algorithm.get(run.algorithm) or {}
    if not isinstance(section, dict):
        raise ValueError(f"per_algorithm.{run.algorithm}: expected a mapping, got {section!r}")
    section = {k: v for k, v in section.items() if k not in PER_ALGORITHM_RUN_KEYS}  # load_run_config's
    values.update(typed_values(cls, section, f"per_algorithm.{run.algorithm}"))
    run_settings = sorted((set(run.algo) - {f.name for f in fields(cls)}) & {f.name for f in fields(RunConfig)})
    if run_settings:
        raise ValueError(f"algo overrides (--set, a preset's `algo:`): {run_settings} are run settings, not "
                         f"{run.algorithm} hyperparameters: give them their own flag or a preset's top level")
    values.update(typed_values(cls, run.algo, "algo overrides"))
    return cls(**values)


def validate_run(run: RunConfig):
    """Checks that need the registries and the algorithm's config; returns that config.

    Every error is a ValueError naming the field: unknown names, the algorithm's own
    hyperparameters (GRPO with a group of 1, REBEL without pairs, ...) and combinations.
    """
    import algorithms
    import tasks
    from harness.engines import ENGINES
    from harness.prompts import STYLES

    algorithms.get(run.algorithm)  # a registered name or package.module:Class; the error lists the names
    for name, value, known in (("task", run.task, tasks.names()),
                               ("engine", run.engine, ENGINES), ("prompt_style", run.prompt_style, STYLES)):
        if value not in known:
            raise ValueError(f"{name} {value!r} is not one of {list(known)}")
    try:
        algo_config = algorithm_config(run)
    except (TypeError, ValueError) as err:
        raise ValueError(f"algo ({run.algorithm}): {err}") from None
    from harness.engines import engine_options

    engine_options(run.engine, run.engine_options)
    from harness.placement import check_strategy, resolve_accelerator

    check_strategy(run.strategy)
    resolve_accelerator(run.accelerator, run.devices)  # a GPU asked for where there is none: an error
    prompts = prompts_per_step(run, algo_config)
    processes = run.devices * run.num_nodes
    if prompts % processes:
        raise ValueError(f"prompts per step {prompts} (prompts_per_step / samples_per_step) is not divisible by "
                         f"devices x num_nodes = {processes}: each process takes an equal share of whole prompts")
    if run.train_limit is not None and run.train_limit < prompts:
        raise ValueError(f"train_limit {run.train_limit} is fewer than the {prompts} prompts of one step")
    return algo_config


def as_params(run: RunConfig, algo_config) -> dict:
    """Flat params for MLflow: the whole resolved config."""
    params = {k: v for k, v in dataclasses.asdict(run).items() if k != "algo"}
    params.update({f"algo.{k}": v for k, v in dataclasses.asdict(algo_config).items()})
    return params


def prompts_per_step(run: RunConfig, algo_config) -> int:
    if run.samples_per_step is None:
        return run.prompts_per_step
    if run.samples_per_step % algo_config.samples_per_prompt:
        raise ValueError(f"samples_per_step {run.samples_per_step} is not a multiple of {run.algorithm}'s "
                         f"samples_per_prompt {algo_config.samples_per_prompt}")
    return run.samples_per_step // algo_config.samples_per_prompt
