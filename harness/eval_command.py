"""`rlvr-bench eval`: one model on one task, through our evaluator or through lm-eval.

Both backends end the same way: completions scored by the one verifier, metrics
(`eval/accuracy` = pass@1, `eval/pass_at_k`, `eval/maj_at_k`, `eval/status/<status>`) logged to
an MLflow run, the per-sample completions saved as a JSONL artifact, and a JSON record written
to `<output-dir>/<experiment>/evals/<task>-<model>-<backend>.json`.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BACKENDS = ("ours", "lm-eval")


@dataclass
class EvalConfig:
    model: str
    task: str
    split: str = "test"
    limit: int | None = None
    samples: int = 1
    temperature: float | None = None
    """None: greedy for one sample per prompt, 1.0 for several."""
    greedy: bool = False
    max_new_tokens: int = 512
    prompt_style: str | None = None
    """None: `chat` if the tokenizer has a chat template, else `plain`."""
    backend: str = "ours"
    engine: str = "auto"
    """auto (vLLM where installed) | hf | vllm; for lm-eval, hf is lm-eval's own `hf` model."""
    batch_size: int = 16
    seed: int = 0
    experiment: str = "eval"
    output_dir: str = "results"
    tracking_uri: str | None = None
    data_dir: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.engine not in ("auto", "hf", "vllm"):
            raise ValueError(f"--engine {self.engine!r} is not one of ('auto', 'hf', 'vllm')")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend {self.backend!r} is not one of {BACKENDS}")
        if self.samples < 1:
            raise ValueError(f"--samples must be >= 1, got {self.samples}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("--max-new-tokens and --batch-size must be >= 1")
        if self.greedy:
            if self.samples != 1:
                raise ValueError(f"--greedy gives one completion per prompt; got --samples {self.samples}")
            if self.temperature not in (None, 0.0):
                raise ValueError(f"--greedy conflicts with --temperature {self.temperature}")
        if self.temperature is None:
            self.temperature = 0.0 if self.greedy or self.samples == 1 else 1.0
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")
        if self.temperature == 0 and self.samples > 1:
            raise ValueError(f"--samples {self.samples} with temperature 0 would repeat one greedy completion")
        if self.backend == "lm-eval" and (self.samples != 1 or self.temperature != 0):
            raise ValueError("--backend lm-eval runs greedy decoding only (one sample, temperature 0)")

    def tracking(self) -> str:
        from harness.tracking import resolve_tracking_uri

        return resolve_tracking_uri(self.tracking_uri, self.output_dir)


def _model_label(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name or model).strip("_") or "model"


def _generate_ours(config: EvalConfig, model_path: str, task, examples: list, prompt_style: str, log) -> list[dict]:
    from algorithms.rollout import SamplingParams
    from harness.prompts import format_prompt

    tokenizer, engine = _engine(config, model_path)
    texts = [format_prompt(tokenizer, ex.prompt, prompt_style) for ex in examples]
    prompt_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    params = SamplingParams(n=config.samples, temperature=config.temperature, top_p=1.0,
                            max_new_tokens=config.max_new_tokens, seed=config.seed)
    log(f"eval: generating {len(examples)} x {config.samples} completions "
        f"(temperature {config.temperature}, max {config.max_new_tokens} new tokens, batches of {config.batch_size})")
    rollout = engine.generate(prompt_ids, params)
    records = []
    for i, completion in enumerate(rollout.texts):
        ex = examples[i // config.samples]
        records.append({"id": ex.id, "sample": i % config.samples, "prompt": texts[i // config.samples],
                        "completion": completion, "gold": ex.answer,
                        "generated_tokens": len(rollout.completion_ids[i])})
    return records


def _engine(config: EvalConfig, model_path: str):
    """(tokenizer, rollout engine) for `config.engine`, resolved in place (auto -> hf | vllm)."""
    from harness.engines import make_engine, resolve_engine
    from harness.engines.hf import HFEngine
    from harness.models import load_policy

    tokenizer, model = load_policy(model_path)
    config.engine = resolve_engine(config.engine)
    engine = (HFEngine(model, tokenizer, max_batch=config.batch_size) if config.engine == "hf" else
              make_engine(config.engine, model, tokenizer, model_dir=model_path))
    return tokenizer, engine


def _lm_eval_model(config: EvalConfig, model_path: str):
    """None: lm-eval's own `hf` model generates; with the vLLM engine, our engine behind lm-eval's
    `LM` interface (harness/lm_eval_engine.py says why not lm-eval's own `vllm` model)."""
    from harness.engines import resolve_engine
    from harness.lm_eval_engine import engine_lm

    config.engine = resolve_engine(config.engine)
    if config.engine == "hf":
        return None
    tokenizer, engine = _engine(config, model_path)
    return engine_lm(engine, tokenizer, model_path)


def _chat_available(model_path: str) -> bool:
    from transformers import AutoTokenizer

    return bool(getattr(AutoTokenizer.from_pretrained(model_path), "chat_template", None))


def run_eval(config: EvalConfig, log=print) -> dict:
    """Generate, verify, log; returns the record (metrics under "metrics")."""
    import torch

    import tasks
    from harness.environment import environment
    from harness.evaluate import answer_key, sample_metrics
    from harness.models import resolve_model
    from harness.paths import evals_dir
    from harness.prompts import PROMPT_VERSION
    from harness.records import write_json_atomic
    from harness.tracking import check_tracking_uri
    from tasks.benchmarks import resolve_data_dir

    if config.threads:
        torch.set_num_threads(config.threads)
    task = tasks.get(config.task)
    task.check_split(config.split)
    if config.backend == "lm-eval":
        from harness.lm_eval_bridge import lm_eval_task_name

        lm_eval_task_name(config.task)  # fails before any model loads
    uri = config.tracking()
    check_tracking_uri(uri)
    model_path = resolve_model(config.model, log=log)
    prompt_style = config.prompt_style or ("chat" if _chat_available(model_path) else "plain")
    examples = task.load(config.split, data_dir=config.data_dir, limit=config.limit)

    started = time.perf_counter()
    if config.backend == "ours":
        records = _generate_ours(config, model_path, task, examples, prompt_style, log)
    else:
        from harness.lm_eval_bridge import run_lm_eval

        if config.split != "test":
            raise ValueError(f"--backend lm-eval evaluates the test split only, not {config.split!r}")
        data_dir = resolve_data_dir(config.data_dir)
        if data_dir is None:
            raise ValueError("--backend lm-eval reads local data files: pass --data-dir or set RLVR_DATA_DIR")
        records = run_lm_eval(model_path, config.task, data_dir, prompt_style, config.limit,
                              config.max_new_tokens, batch_size=config.batch_size, log=log,
                              lm=_lm_eval_model(config, model_path))
        expected = [ex.id for ex in examples]
        if [r["id"] for r in records] != expected:
            raise RuntimeError(f"lm-eval evaluated other examples than tasks.get({config.task!r}).load gives")
        for r in records:
            r["sample"] = 0
    generate_s = time.perf_counter() - started

    verify_started = time.perf_counter()
    verdicts = task.reward_many([r["completion"] for r in records], [examples[i // config.samples] for i in range(len(records))])
    verify_s = time.perf_counter() - verify_started
    for r, v in zip(records, verdicts, strict=True):
        r.update(score=v.score, status=v.status, answer=answer_key(r["completion"]))
    metrics = sample_metrics([r["completion"] for r in records], verdicts, config.samples)
    if config.backend == "lm-eval":
        # lm-eval scored each completion itself (utils.process_results); the two must agree.
        metrics["eval/lm_eval_accuracy"] = sum(r["lm_eval_pass_at_1"] for r in records) / max(1, len(records))
        metrics["eval/lm_eval_disagreements"] = float(sum(r["lm_eval_pass_at_1"] != r["score"] for r in records))
    metrics["timing_s/generate"] = generate_s
    metrics["timing_s/reward"] = verify_s
    metrics["time/wall_s"] = time.perf_counter() - started
    tokens = [r.get("generated_tokens") for r in records]
    if all(t is not None for t in tokens):
        metrics["eval/response_length"] = sum(tokens) / max(1, len(tokens))
        metrics["perf/tokens_per_s"] = sum(tokens) / max(generate_s, 1e-9)

    params = {**asdict(config), "prompt_style": prompt_style, "temperature": config.temperature,
              "prompt_version": PROMPT_VERSION, "task_version": task.version, "model_path": model_path,
              "examples": len(examples)}
    label = f"{config.task}-{_model_label(config.model)}-{config.backend}"
    env = environment()
    run_id = _log_mlflow(uri, config, params, metrics, records, label, env, prompt_style)
    record = {"task": config.task, "model": config.model, "backend": config.backend, "experiment": config.experiment,
              "params": params, "metrics": metrics, "environment": env, "prompt_version": PROMPT_VERSION,
              "prompt_style": prompt_style, "mlflow_run_id": run_id, "tracking_uri": uri}
    out = evals_dir(config.output_dir, config.experiment)
    write_json_atomic(out / f"{label}.json", record)
    _write_jsonl(out / f"{label}.completions.jsonl", records)
    log(f"eval {label}: pass@1 {metrics['eval/accuracy']:.4f} on {len(examples)} prompts x {config.samples} "
        f"(pass@{config.samples} {metrics['eval/pass_at_k']:.4f}, maj@{config.samples} {metrics['eval/maj_at_k']:.4f}) "
        f"in {metrics['time/wall_s']:.0f}s; record {out / (label + '.json')}")
    record["records"] = records
    return record


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for r in records:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")


def _log_mlflow(uri: str, config: EvalConfig, params: dict, metrics: dict, records: list[dict], label: str,
                env: dict, prompt_style: str) -> str:
    import mlflow

    client_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(config.experiment)
        tags = {"task": config.task, "model": config.model,
                "engine": config.engine, "backend": config.backend,
                "prompt_style": prompt_style, "prompt_version": params["prompt_version"], "kind": "eval"}
        with mlflow.start_run(run_name=label, tags=tags) as run:
            mlflow.log_params({k: ("" if v is None else v) for k, v in params.items()})
            mlflow.log_params({"git_commit": env.get("git_commit") or "",
                               **{f"version.{k}": v for k, v in env["versions"].items()}})
            mlflow.log_metrics(metrics)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "completions.jsonl"
                _write_jsonl(path, records)
                mlflow.log_artifact(str(path))
            return run.info.run_id
    finally:
        mlflow.set_tracking_uri(client_uri)


def cmd_eval(args) -> int:
    fields = EvalConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    run_eval(EvalConfig(**values))
    return 0


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a task: pass@1, pass@k, maj@k (ours or lm-eval)")
    p.add_argument("--model", required=True, help="tiny | smollm2-135m | local HF folder | hub id")
    p.add_argument("--task", required=True, help="task name (tasks.names())")
    p.add_argument("--split", help="split (default: test)")
    p.add_argument("--limit", type=int, help="first N examples of the split")
    p.add_argument("--samples", type=int, help="completions per prompt k (default 1): pass@k and maj@k use them")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: 0 for one sample, 1 for several)")
    p.add_argument("--greedy", action="store_true", default=None, help="greedy decoding (one sample per prompt)")
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, help="default 512")
    p.add_argument("--prompt-style", dest="prompt_style", choices=["plain", "chat"],
                   help="default: chat if the tokenizer has a chat template, else plain")
    p.add_argument("--backend", choices=list(BACKENDS), help="ours (default) | lm-eval (lm_eval.simple_evaluate)")
    p.add_argument("--engine", choices=["auto", "hf", "vllm"],
                   help="generation engine (default auto: vLLM where installed); with --backend lm-eval, "
                        "hf = lm-eval's own hf model, vllm = our vLLM engine behind lm-eval's LM interface")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="prompts per generate call (both backends; default 16)")
    p.add_argument("--seed", type=int, help="sampling seed (default 0)")
    p.add_argument("--experiment", help="MLflow experiment (default: eval)")
    p.add_argument("--output-dir", dest="output_dir", help="folder for <experiment>/evals and the default MLflow store")
    p.add_argument("--tracking-uri", dest="tracking_uri", help="MLflow tracking URI (default: SQLite under the output folder)")
    p.add_argument("--data-dir", dest="data_dir", help="local benchmark data folder (else $RLVR_DATA_DIR, else the hub)")
    p.add_argument("--threads", type=int, help="torch threads")
    p.set_defaults(func=cmd_eval)
