"""Rollout engines behind `algorithms.rollout.RolloutEngine`: `hf` (reference) and `vllm`.

`auto` picks vLLM where it is installed, else Hugging Face `generate`.
"""

from __future__ import annotations

ENGINES = ("auto", "hf", "vllm")
# HFEngine's options: rows per generate call and prompts per prefill slice (0: one prefill of
# every prompt), with their smallest values; whether decoding drops finished rows (`bool`: true or
# false; the engine's default is true).
HF_OPTIONS = {"max_batch": 1, "prefill_rows": 0, "drop_finished": bool}


def resolve_engine(name: str) -> str:
    if name == "auto":
        from harness.engines.vllm import vllm_available

        return "vllm" if vllm_available() else "hf"
    return name


def engine_options(name: str, options: dict | None):
    """The engine's typed options from the config's `engine_options` dict (errors name the key).

    Keys at the top apply to whichever engine runs; a section named after an engine
    (`{hf: {prefill_rows: 32}, vllm: {kv_cache_gb: 2}}`) applies to that engine only, so one preset
    can carry options for both and still run with `--engine hf` or `--engine vllm`.
    """
    options = dict(options or {})
    sections = {engine: options.pop(engine) for engine in ENGINES[1:] if engine in options}
    for engine, section in sections.items():
        if not isinstance(section, dict):
            raise ValueError(f"engine_options.{engine}: expected a mapping of that engine's options, got {section!r}")
    options.update(sections.get(resolve_engine(name), {}))
    if resolve_engine(name) == "hf":
        unknown = sorted(set(options) - set(HF_OPTIONS))
        if unknown:
            raise ValueError(f"engine_options: unknown key(s) {unknown} for the hf engine; known: {list(HF_OPTIONS)}")
        for key, value in options.items():
            if HF_OPTIONS[key] is bool:
                if not isinstance(value, bool):
                    raise ValueError(f"engine_options.{key}: expected true or false, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < HF_OPTIONS[key]:
                raise ValueError(f"engine_options.{key}: expected an integer >= {HF_OPTIONS[key]}, got {value!r}")
        return options
    if resolve_engine(name) != "vllm":
        return None
    from dataclasses import fields

    from harness.engines.vllm import VLLMOptions

    known = {f.name for f in fields(VLLMOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"engine_options: unknown key(s) {unknown} for the vllm engine; known: {sorted(known)}")
    return VLLMOptions(**options)


def engine_params(name: str, options: dict | None, precision: str = "32-true") -> dict:
    """The engine's resolved options as run params (`engine_options.*`, as `VLLMEngine.describe`
    gives them; the hf engine records none)."""
    from dataclasses import is_dataclass

    resolved = engine_options(name, options)
    if not is_dataclass(resolved):
        return {}
    from harness.engines.vllm import describe_options, engine_dtype

    return describe_options(engine_dtype(resolved, precision))


def make_engine(name: str, model, tokenizer, model_dir: str | None = None, options: dict | None = None,
                seed: int = 0, precision: str = "32-true"):
    """An engine sampling from `model`'s current weights; `model_dir` is its saved folder (vLLM loads it).

    Under DDP, build it once the processes' group exists (each process its own engine; vLLM joins
    the group) and give each process its own `seed` (vLLM's engine seed; the HF engine is seeded
    per request by the module's per-rank sampling seeds)."""
    name = resolve_engine(name)
    if name == "hf":
        from harness.engines.hf import HFEngine

        return HFEngine(model, tokenizer, **engine_options(name, options))
    if name == "vllm":
        from harness.engines.vllm import VLLMEngine

        if model_dir is None:
            raise ValueError("--engine vllm needs the policy's saved folder (model_dir)")
        return VLLMEngine(model_dir, tokenizer, policy=model, options=engine_options(name, options), seed=seed,
                          precision=precision)
    raise ValueError(f"--engine {name!r} is not one of {ENGINES}")
