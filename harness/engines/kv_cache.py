"""A key/value cache for Hugging Face `generate` that writes each new token in place.

transformers' `DynamicLayer` grows by `torch.cat`: every decoding step copies every layer's whole
cache, which was 16 % of the HF engine's generation time on the tiny model. `ReservedLayer` keeps
its keys and values as views into buffers with room for the tokens still to come, so a step
copies only the new token. The views hold the same numbers in the same shapes as DynamicLayer's
tensors, and attention reads them as it reads those: rollouts are unchanged, token for token.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class ReservedLayer(DynamicLayer):
    def __init__(self, reserve: int):
        super().__init__()
        self.reserve = reserve
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        total = length + key_states.shape[-2]
        if not self._holds(total):
            self._regrow(length, total, key_states)
        keys, values = self._buffers
        keys[..., length:total, :].copy_(key_states)
        values[..., length:total, :].copy_(value_states)
        self.keys, self.values = keys[..., :total, :], values[..., :total, :]
        return self.keys, self.values

    def _holds(self, total: int) -> bool:
        """Whether the buffers still back `keys` (methods such as `batch_repeat_interleave` replace
        it with a tensor of their own) and have room for `total` tokens."""
        if self._buffers is None or self.keys.numel() == 0:
            return False
        keys = self._buffers[0]
        return (self.keys.data_ptr() == keys.data_ptr() and self.keys.shape[:-2] == keys.shape[:-2]
                and keys.shape[-2] >= total)

    def _regrow(self, length: int, total: int, like: torch.Tensor) -> None:
        shape = (*like.shape[:-2], total + self.reserve, like.shape[-1])
        keys, values = like.new_empty(shape), like.new_empty(shape)
        if length:
            keys[..., :length, :].copy_(self.keys)
            values[..., :length, :].copy_(self.values)
        self._buffers = (keys, values)


def reserved_cache(cache: DynamicCache | None, config, reserve: int) -> DynamicCache | None:
    """`cache` (or a new empty one for `config`) with its plain dynamic layers swapped for
    `ReservedLayer`s that hold `reserve` more tokens. Caches with layers of another kind
    (sliding windows) come back as they are (None: `generate` makes its own)."""
    fresh = cache is None
    if fresh:
        cache = DynamicCache(config=config)
    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None if fresh else cache
    for i, layer in enumerate(cache.layers):
        reserved = ReservedLayer(reserve)
        if layer.is_initialized and layer.get_seq_length():
            reserved.update(layer.keys, layer.values)
        cache.layers[i] = reserved
    return cache
