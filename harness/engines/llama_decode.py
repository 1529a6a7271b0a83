"""One decoding step of a Llama-architecture model without transformers' per-call machinery.

A decoding step of the tiny model is mostly Python: `LlamaForCausalLM.forward` merges config
defaults, builds a 4-D mask (`create_causal_mask`), wraps every layer call and records outputs,
which on the tiny model at the TRL benchmark's size (64 rows, 4 layers) costs more than half a
millisecond of a 3.3 ms step. This step runs the same operations on the same tensors in the same
order (embedding, the model's own rotary module, its RMS norms' own `forward` called past
`Module.__call__`, the projections, transformers' own `apply_rotary_pos_emb` and
`sdpa_attention_forward`, the cache's `update`, the gated MLP, the final norm and the head on the
last position), so its logits are bitwise the model's (`tests/harness/test_llama_decode.py`
checks it, with padding and grouped-query attention). It takes one new token per row; the first
step of a decode (the prompt, or its last token after a shared prefill) goes through the model's
forward.

Models that differ in anything this step does not reproduce (another class or attention
implementation, biases, another activation, replaced or hooked submodules, hooks registered for
every module, layers of a cache other than plain full attention) get None from `decoding_step`
and decode through `model(...)`.
The model's own forward hooks still run after each step, with the step's output.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks
from transformers.activations import SiLUActivation
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaMLP,
    LlamaModel,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

from harness.engines.kv_cache import ReservedLayer

Step = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", Cache], CausalLMOutputWithPast]


def _plain(module: torch.nn.Module) -> bool:
    """`module` runs its class's `forward` as transformers (or torch) wrote it, with no hooks."""
    cls = type(module)
    own = cls.forward is torch.nn.Module.forward or cls.forward.__qualname__ == f"{cls.__name__}.forward"
    return ("forward" not in vars(module) and own  # own: not swapped for a hub kernel (ModuleList has none)
            and not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks))


# Every module class a Llama model is made of; a model holding anything else (an adapter, a
# patched attention) decodes through its forward.
_PARTS = (LlamaModel, LlamaDecoderLayer, LlamaAttention, LlamaMLP, LlamaRMSNorm, LlamaRotaryEmbedding,
          torch.nn.ModuleList, torch.nn.Embedding, torch.nn.Linear, SiLUActivation)


def _supported(model: torch.nn.Module) -> bool:
    config = model.config
    if not (type(model) is LlamaForCausalLM and config._attn_implementation == "sdpa" and not model.training
            and not config.attention_bias and not config.mlp_bias and config.hidden_act == "silu"
            and not model._forward_pre_hooks and not model._forward_hooks_with_kwargs
            and not (module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks)):
        return False
    for name, module in model.named_modules():
        if name and not (type(module) in _PARTS and _plain(module)):
            return False
        if type(module) is torch.nn.Linear and module.bias is not None:
            return False
    return True


def decoding_step(model: torch.nn.Module) -> Step | None:
    """A function (ids [B, 1], positions [B, 1], 2-D attention mask [B, K] or None, cache) -> the
    model's output for one new token per row (logits [B, 1, V]; the cache updated in place), or
    None when `model` is not one this step reproduces bitwise."""
    if not _supported(model):
        return None
    inner = model.model
    hooks = model._forward_hooks

    def step(ids: torch.Tensor, positions: torch.Tensor, attention: torch.Tensor | None, cache: Cache):
        hidden = inner.embed_tokens(ids)
        cos, sin = inner.rotary_emb(hidden, position_ids=positions)
        # create_causal_mask for SDPA and one query: none without padding, else the padding as booleans.
        mask = None if attention is None or bool(attention.all()) else attention[:, None, None, :].bool()
        rows = ids.shape[0]
        for index, layer in enumerate(inner.layers):
            attn = layer.self_attn
            x = layer.input_layernorm.forward(hidden)
            shape = (rows, 1, -1, attn.head_dim)
            query = F.linear(x, attn.q_proj.weight).view(shape).transpose(1, 2)
            key = F.linear(x, attn.k_proj.weight).view(shape).transpose(1, 2)
            value = F.linear(x, attn.v_proj.weight).view(shape).transpose(1, 2)
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            key, value = cache.update(key, value, index)
            out, _ = sdpa_attention_forward(attn, query, key, value, mask, dropout=0.0, scaling=attn.scaling)
            hidden = hidden + F.linear(out.reshape(rows, 1, -1).contiguous(), attn.o_proj.weight)
            mlp = layer.mlp
            x = layer.post_attention_layernorm.forward(hidden)
            gated = F.silu(F.linear(x, mlp.gate_proj.weight)) * F.linear(x, mlp.up_proj.weight)
            hidden = hidden + F.linear(gated, mlp.down_proj.weight)
        output = CausalLMOutputWithPast(logits=F.linear(inner.norm.forward(hidden), model.lm_head.weight),
                                        past_key_values=cache)
        for hook in tuple(hooks.values()):
            hook(model, (), output)
        return output

    return step


def cache_supported(cache: Cache) -> bool:
    """Full-attention layers that `Cache.update` appends to (sliding windows and the like mask otherwise)."""
    return all(type(layer) in (DynamicLayer, ReservedLayer) for layer in cache.layers)
