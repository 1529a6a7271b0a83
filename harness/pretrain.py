"""`rlvr-bench pretrain`: the tiny warm start (harness.tiny_model), whether its bytes are the
shipped ones, and its accuracy before training on a comparison's held-out set.

Apart from harness.tiny_model, which builds the model and imports no evaluation or comparison code
(harness.models resolves `--model tiny` through it)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.tiny_model import KNOWN_BUILDS, SHIPPED_SHA1, cpu_kind, ensure_tiny


def warm_start_accuracy(model_dir: Path, preset: str = "default") -> dict:
    """pass@1 of a warm start on the held-out set the comparison `preset` evaluates, with its engine,
    sampling and evaluation seed, for each of its seeds: what its runs report as accuracy before
    training (on one torch thread, as the comparison's side-by-side runs have)."""
    import tasks
    from harness.compare import grid
    from harness.config import algorithm_config, load_run_config
    from harness.engines import make_engine
    from harness.evaluate import evaluate
    from harness.models import load_policy
    from harness.prompts import encode_prompts
    from harness.splits import load_examples

    algos, seeds = grid(preset, None, None)
    run = load_run_config(preset, {"model": str(model_dir), "algorithm": algos[0]})
    tokenizer, model = load_policy(str(model_dir))
    task = tasks.get(run.task)
    examples = load_examples(task, "test", run, run.eval_limit)
    engine = make_engine(run.engine, model, tokenizer, model_dir=str(model_dir), options=run.engine_options)

    def encode(exs):
        return encode_prompts(tokenizer, [ex.prompt for ex in exs], run.prompt_style)

    max_new = run.eval_max_new_tokens or algorithm_config(run).max_new_tokens
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_seed = {seed: evaluate(engine, task, examples, encode, samples=run.eval_samples,
                                   temperature=run.eval_temperature, max_new_tokens=max_new,
                                   seed=seed + 12345)["eval/accuracy"] for seed in seeds}
    finally:
        torch.set_num_threads(threads)
    return {"per_seed": per_seed, "accuracy": sum(per_seed.values()) / len(per_seed), "examples": len(examples),
            "samples": run.eval_samples, "temperature": run.eval_temperature, "task": run.task,
            "task_options": run.task_options}


def pretrain_and_report(rebuild: bool = False, preset: str = "default", log=print) -> Path:
    """The warm start (with `rebuild`, built again on this machine), whether its bytes are the
    shipped ones, and its accuracy on `preset`'s held-out set. Returns its folder."""
    path = ensure_tiny(force=rebuild, log=log)
    sha1 = json.loads((path / "rlvr_pretrain.json").read_text())["sha1"]
    if not rebuild:
        log(f"warm start: {path} (shipped, sha1 {sha1})")
    elif sha1 == SHIPPED_SHA1:
        log(f"warm start: {path}: rebuilt, sha1 {sha1}: matches the shipped warm start, bit for bit")
    else:
        kind = cpu_kind()
        seen = [k for k, v in KNOWN_BUILDS.items() if v == sha1]
        log(f"warm start: {path}: rebuilt, sha1 {sha1}: does NOT match the shipped warm start ({SHIPPED_SHA1}); "
            f"this CPU ({kind}) builds " + (f"what {seen} built" if seen else "bytes no recorded CPU kind built")
            + "; comparisons use the shipped one unless given --model " + str(path))
    acc = warm_start_accuracy(path, preset)
    seeds = ", ".join(f"seed {k} {v:.3f}" for k, v in acc["per_seed"].items())
    log(f"warm start pass@1 on the {acc['examples']} held-out {acc['task']} problems {acc['task_options']} of preset "
        f"{preset!r} ({acc['samples']} samples each, T={acc['temperature']:g}): {acc['accuracy']:.3f} ({seeds})")
    return path
