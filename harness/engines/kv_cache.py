"""A key/value cache for the HF engine's decoding that writes each new token in place.

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
        rows = key_states.shape[0]  # the buffers' first rows (decoding may have dropped the others)
        keys, values = self._buffers[0][:rows], self._buffers[1][:rows]
        keys[..., length:total, :].copy_(key_states)
        values[..., length:total, :].copy_(value_states)
        self.keys, self.values = keys[..., :total, :], values[..., :total, :]
        return self.keys, self.values

    def fill(self, keys: torch.Tensor, values: torch.Tensor, repeat: int = 1, rows: int | None = None,
             start: int = 0) -> None:
        """Write `keys`/`values` [b, H, L, D], each row repeated `repeat` times in place (as
        `batch_repeat_interleave`, but written once, straight into the reserved buffers), as the
        prompts `start` to `start + b` of `rows` (default b). The first call makes the buffers; a
        chunked prefill writes each further slice of prompts with another call, as it comes."""
        part, length = keys.shape[0], keys.shape[-2]
        if self._buffers is None:
            self.lazy_initialization(keys, values)
            shape = ((rows or part) * repeat, *keys.shape[1:-2], length + self.reserve, keys.shape[-1])
            self._buffers = keys.new_empty(shape), values.new_empty(shape)
        for buffer, source in zip(self._buffers, (keys, values)):
            block = buffer[start * repeat:(start + part) * repeat]
            block.view(part, repeat, *buffer.shape[1:])[..., :length, :].copy_(source.unsqueeze(1))
        self.keys, self.values = self._buffers[0][..., :length, :], self._buffers[1][..., :length, :]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows `indices`, in that order, at the front of the same buffers: only the rows
        whose place changes are copied (gathered first, then written, so any order is safe), no
        second buffer is made, and the rows keep their room to grow. Decoding fills the places of
        dropped rows with kept rows from the back, so few rows move."""
        length = self.get_seq_length()
        if not self._holds(length):
            return super().batch_select_indices(indices)
        kept = indices.numel()
        moving = (indices != torch.arange(kept, device=indices.device)).nonzero().squeeze(1)
        if moving.numel():
            sources = indices[moving]
            for buffer in self._buffers:
                used = buffer[..., :length, :]
                used.index_copy_(0, moving, used.index_select(0, sources))
        self.keys, self.values = self._buffers[0][:kept, ..., :length, :], self._buffers[1][:kept, ..., :length, :]

    def _holds(self, total: int) -> bool:
        """Whether the buffers still back `keys` (methods such as `batch_repeat_interleave` replace
        it with a tensor of their own) and have room for `total` tokens."""
        if self._buffers is None or self.keys.numel() == 0:
            return False
        keys = self._buffers[0]
        return (self.keys.data_ptr() == keys.data_ptr() and self.keys.shape[1:-2] == keys.shape[1:-2]
                and self.keys.shape[0] <= keys.shape[0] and keys.shape[-2] >= total)

    def _regrow(self, length: int, total: int, like: torch.Tensor) -> None:
        shape = (*like.shape[:-2], total + self.reserve, like.shape[-1])
        keys, values = like.new_empty(shape), like.new_empty(shape)
        if length:
            keys[..., :length, :].copy_(self.keys)
            values[..., :length, :].copy_(self.values)
        self._buffers = (keys, values)


def reserved_cache(cache: DynamicCache | None, config, reserve: int, repeat: int = 1,
                   rows: int | None = None) -> DynamicCache | None:
    """`cache` (or a new empty one for `config`) with its plain dynamic layers swapped for
    `ReservedLayer`s that hold `reserve` more tokens, each row repeated `repeat` times (a prompt's
    keys and values for its samples). With `rows`, `cache` holds the first slice of `rows` prompts
    and the buffers are made for all of them (`fill_rows` writes the others). Caches with layers of
    another kind (sliding windows) come back as they are, repeated (None: decoding makes its own)."""
    fresh = cache is None
    if fresh:
        cache = DynamicCache(config=config)
    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        if fresh:
            return None
        if repeat > 1:
            cache.batch_repeat_interleave(repeat)
        return cache
    for i, layer in enumerate(cache.layers):
        reserved = ReservedLayer(reserve)
        if layer.is_initialized and layer.get_seq_length():
            reserved.fill(layer.keys, layer.values, repeat, rows)
        cache.layers[i] = reserved
    return cache


def fill_rows(cache: DynamicCache, part: DynamicCache, start: int, repeat: int = 1) -> None:
    """Write the keys and values of `part`, a prefill of the prompts from `start` on, into the
    buffers of `cache` (made by `reserved_cache(..., rows=...)`), each row repeated `repeat` times."""
    for layer, source in zip(cache.layers, part.layers):
        layer.fill(source.keys, source.values, repeat, start=start)
