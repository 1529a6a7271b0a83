"""The tiny policy: a ~1M-parameter Llama with a character tokenizer, warm-started on `arithmetic`.

RL needs a policy that is right part of the time. The project ships one (:data:`SHIPPED_DIR`, 3.4 MB:
safetensors, tokenizer, config), so every machine starts from the same bytes and nothing is built
before a comparison. :func:`pretrain` is its recipe (supervised training on worked solutions, a
few CPU minutes); `rlvr-bench pretrain --rebuild` runs it again and says whether this machine
builds the shipped bytes.

The build runs in its own process with pinned kernels (:func:`build_environment`): 800 Adam steps
amplify float rounding, so each CPU's own kernels would build another warm start. Pinned, a machine
builds the same bytes every time, but CPU kinds still differ (:data:`KNOWN_BUILDS`): that is why
the bytes are shipped rather than rebuilt.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import string
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from harness.paths import atomic_folder, cache_path
from harness.prompts import PLAIN_TEMPLATE

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
# Printable ASCII plus newline: everything the arithmetic task writes.
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
# The shipped warm start (built by the pinned build of `TinySpec()` on an AMD EPYC, family 26).
SHIPPED_DIR = Path(__file__).parent / "warm_start"
SHIPPED_SHA1 = "fd74e64320f603b39a09f63258c11cf05f11c4dc"
# sha1 of `model.safetensors` that the pinned build of `TinySpec()` wrote on Intel's x86-64 CPUs:
# the published results/reference were made from it until they are remade from the shipped one.
INTEL_SHA1 = "36c32ba0fba96c601815a804372f652e12ddf3e2"
# What the pinned build of `TinySpec()` wrote on each CPU kind seen, by (vendor, family) of /proc/cpuinfo.
KNOWN_BUILDS = {
    ("GenuineIntel", 6): INTEL_SHA1,  # Xeons with AVX-512 and AMX
    ("AuthenticAMD", 26): SHIPPED_SHA1,  # EPYC Zen 5
}
BUILD_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_DYNAMIC", "ONEDNN_MAX_CPU_ISA")


@dataclass(frozen=True)
class TinySpec:
    """Architecture and warm-start recipe; its hash names the cache folder."""

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 256
    train_examples: int = 20000
    steps: int = 800
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    threads: int = 2
    """torch threads of the build, whatever the machine has: they decide how sums are split."""
    version: int = 2
    """2: MKL's COMPATIBLE branch (version 1's AVX2 branch built other bytes on Intel CPUs than on AMD ones)."""

    def key(self) -> str:
        import hashlib

        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"tiny-arithmetic-v{self.version}-{digest}"


def build_tokenizer():
    """A character-level tokenizer saved as a normal `tokenizer.json`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + CHARS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def build_model(spec: TinySpec, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        pad_token_id=SPECIALS.index("<pad>"),
        bos_token_id=SPECIALS.index("<s>"),
        eos_token_id=SPECIALS.index("</s>"),
    )
    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(config)


def _sft_batch(tokenizer, examples, device="cpu"):
    """Right-padded prompt+solution+EOS with a loss mask on the solution tokens only."""
    rows, masks = [], []
    for ex in examples:
        prompt_ids = tokenizer(PLAIN_TEMPLATE.format(prompt=ex.prompt), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(ex.solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt_ids + answer_ids)
        masks.append([0] * len(prompt_ids) + [1] * len(answer_ids))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    loss_mask = torch.zeros((len(rows), width), dtype=torch.float32)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, m) in enumerate(zip(rows, masks)):
        ids[i, : len(r)] = torch.tensor(r)
        loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.float32)
        attention[i, : len(r)] = 1
    return ids.to(device), attention.to(device), loss_mask.to(device)


def pretrain(spec: TinySpec, out_dir: Path, log=print) -> dict:
    """Supervised warm start on arithmetic worked solutions; saves an HF folder to `out_dir`."""
    import tasks

    task = tasks.get("arithmetic")
    train = task.load("train", limit=spec.train_examples)
    tokenizer = build_tokenizer()
    model = build_model(spec, len(tokenizer))
    params = sum(p.numel() for p in model.parameters())
    log(f"pretrain: {params / 1e6:.2f}M parameters, {spec.steps} steps of {spec.batch_size} examples")
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, spec.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, spec.steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    rng = random.Random(spec.seed)
    model.train()
    started = time.perf_counter()
    for step in range(spec.steps):
        batch = rng.sample(train, spec.batch_size)
        ids, attention, loss_mask = _sft_batch(tokenizer, batch)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
        token_loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none"
        ).view_as(loss_mask[:, 1:])
        loss = (token_loss * loss_mask[:, 1:]).sum() / loss_mask[:, 1:].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 100 == 0 or step == spec.steps - 1:
            log(f"pretrain: step {step:4d}  loss {loss.item():.4f}  {time.perf_counter() - started:.0f}s")
    model.eval()
    with atomic_folder(out_dir) as tmp:  # a half-written folder is never taken for a finished one
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"spec": asdict(spec), "parameters": params, "train_seconds": time.perf_counter() - started,
                "torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "environment": {k: os.environ.get(k) for k in BUILD_VARIABLES},
                "sha1": _sha1(tmp / "model.safetensors")}
        (tmp / "rlvr_pretrain.json").write_text(json.dumps(info, indent=2))
    return info


def ensure_tiny(spec: TinySpec | None = None, log=print, force: bool = False) -> Path:
    """The warm-start folder of `spec`: the shipped one for `TinySpec()`, else (or with `force`,
    a rebuild) the cached build, built on first use."""
    spec = spec or TinySpec()
    if spec == TinySpec() and not force:
        return shipped_warm_start()
    return build_tiny(spec, log=log, force=force)


def shipped_warm_start() -> Path:
    """:data:`SHIPPED_DIR`, checked: its recipe is `TinySpec()` and its bytes are :data:`SHIPPED_SHA1`
    (a Git LFS pointer or a truncated copy fails here, naming the file)."""
    weights = SHIPPED_DIR / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: the shipped warm start is missing; "
                                "`rlvr-bench pretrain --rebuild` builds one into the cache")
    info = json.loads((SHIPPED_DIR / "rlvr_pretrain.json").read_text())
    if info["spec"] != asdict(TinySpec()) or info["sha1"] != SHIPPED_SHA1:
        raise ValueError(f"{SHIPPED_DIR / 'rlvr_pretrain.json'}: recipe or sha1 differ from TinySpec() / SHIPPED_SHA1")
    if weights.stat().st_size != _SHIPPED_BYTES:
        raise ValueError(f"{weights}: {weights.stat().st_size} bytes, expected {_SHIPPED_BYTES} (a Git LFS pointer?)")
    return SHIPPED_DIR


_SHIPPED_BYTES = 3467712  # size of the shipped model.safetensors: a cheap check on every use (sha1 in tests)


def build_tiny(spec: TinySpec, log=print, force: bool = False) -> Path:
    """The cached build of `spec` under the cache folder, built on first use (or again with `force`)."""
    out_dir = cache_path("models") / spec.key()
    if force and out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    if (out_dir / "rlvr_pretrain.json").exists():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    # Processes that need it at the same time (tests, a comparison's runs) wait for one build.
    with open(out_dir.parent / f"{spec.key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out_dir / "rlvr_pretrain.json").exists():
            log(f"pretrain: building the warm start into {out_dir} (a few CPU minutes)")
            subprocess.run([sys.executable, "-m", "harness.tiny_model", str(out_dir), json.dumps(asdict(spec))],
                           env=build_environment(spec), check=True)
    return out_dir


def build_environment(spec: TinySpec) -> dict:
    """The build process's environment: on x86-64 CPUs with AVX2 (AVX-512 ones included), PyTorch's
    AVX2 kernels (ATEN_CPU_CAPABILITY), MKL's COMPATIBLE code path in its reproducible mode with a
    fixed thread count (MKL_CBWR, MKL_DYNAMIC) and oneDNN's AVX2 kernels, with `spec.threads`
    threads: the same arithmetic in the same order on every such machine.

    MKL's other reproducible branches (AVX2 among them) hold on Intel CPUs only; on others MKL
    takes its AUTO branch instead, so version 1 of the build (MKL_CBWR=AVX2) wrote one warm start
    on AMD CPUs and another on Intel ones. COMPATIBLE (SSE2) is MKL's branch for all of them; the
    build takes ~1.6x as long. The build's matrix products are all MKL's SGEMM (MKL_VERBOSE and
    ONEDNN_VERBOSE show no oneDNN call)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads), MKL_NUM_THREADS=str(spec.threads))
    if platform.machine().lower() in ("x86_64", "amd64") and _has_avx2():
        env.update(ATEN_CPU_CAPABILITY="avx2", MKL_CBWR="COMPATIBLE,STRICT", MKL_DYNAMIC="FALSE",
                   ONEDNN_MAX_CPU_ISA="AVX2")
    return env


def _sha1(path: Path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


def _cpuinfo() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_kind() -> tuple[str, int] | None:
    """(vendor, family) of this machine's CPU as /proc/cpuinfo names them; None where it does not."""
    fields = {}
    for line in (_cpuinfo() or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    try:
        return fields["vendor_id"], int(fields["cpu family"])
    except (KeyError, ValueError):
        return None


def _has_avx2() -> bool:
    info = _cpuinfo()
    if info is None:
        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    return " avx2" in info


if __name__ == "__main__":  # the build process of ensure_tiny: python -m harness.tiny_model OUT_DIR SPEC_JSON
    build_spec = TinySpec(**json.loads(sys.argv[2]))
    torch.set_num_threads(build_spec.threads)
    pretrain(build_spec, Path(sys.argv[1]))
