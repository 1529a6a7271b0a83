"""Rollouts through the Hugging Face model itself: the reference engine the vLLM one is checked against.

It samples from the very module being trained, so `load_weights` has nothing to copy. A prompt's
keys and values are computed once for its n samples, kept in a cache that writes new tokens in
place (`kv_cache`), and decoded by `decode.sample`: what `generate` samples, token for token, with
less Python per step, and (`drop_finished`, the default) only the rows still running once some
have ended: a step of GRPO's 32 prompts x 8 decodes its stragglers alone.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from algorithms.batch import positions
from algorithms.rollout import Rollout, SamplingParams
from harness.engines.decode import sample
from harness.engines.kv_cache import fill_rows, reserved_cache


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids, mask


class HFEngine:
    def __init__(self, model, tokenizer, max_batch: int = 256, prefill_rows: int = 0, drop_finished: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.prefill_rows = prefill_rows
        self.drop_finished = drop_finished  # decoding computes only the rows still running (`decode.sample`)

    def load_weights(self, model) -> None:
        self.model = model

    @torch.inference_mode()
    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> Rollout:
        # Seeding the global generator right before sampling makes rollouts a function of
        # (seed, weights, prompts) alone, whatever ran before (evaluation, other phases).
        torch.manual_seed(params.seed)
        was_training = self.model.training
        self.model.eval()
        out = Rollout([], [], [], [])
        per_chunk = max(1, self.max_batch // params.n)  # whole prompts: their n samples share a prefill
        try:
            for start in range(0, len(prompt_ids), per_chunk):
                self._generate_chunk(prompt_ids[start:start + per_chunk], params, out)
        finally:
            self.model.train(was_training)
        return out

    def _prompt_cache(self, ids: torch.Tensor, mask: torch.Tensor, params: SamplingParams):
        """The cache decoding starts from: the keys and values of every prompt but its last token,
        computed once and written straight into buffers that repeat them for the n samples and have
        room for the new tokens (`kv_cache`); decoding then prefills only the last token. With
        `prefill_rows` > 0, computed that many prompts at a time (a chunked prefill: 256 one-sample
        prompts hold the activations of 32 at once, as a GRPO chunk of 32 prompts x 8 does), each
        slice written into the buffers as it comes, so that no more than one slice's keys and values
        are held beside them. An empty cache when there is nothing to share or to slice (decoding
        then prefills the whole prompts). A cache with layers of another kind (sliding windows)
        cannot be sliced: its prompts are prefilled at once and repeated as they are, or, with
        one sample each, left to decoding (None)."""
        n, reserve, config = params.n, params.max_new_tokens, self.model.config
        rows = ids.shape[0]
        step = self.prefill_rows or rows
        if ids.shape[1] < 2 or (n < 2 and rows <= step):
            return reserved_cache(None, config, reserve)
        pos = positions(mask)

        def prefill(rows_: slice):
            return self.model(input_ids=ids[rows_, :-1], attention_mask=mask[rows_, :-1], position_ids=pos[rows_, :-1],
                              use_cache=True, logits_to_keep=1).past_key_values

        first = prefill(slice(0, step))
        if rows > step and not all(type(layer) is DynamicLayer for layer in first.layers):
            # Layers that hold more than keys and values cannot be written in slices.
            if n < 2:  # decoding prefills the whole prompts
                return reserved_cache(None, config, reserve)
            return reserved_cache(prefill(slice(None)), config, reserve, n)
        cache = reserved_cache(first, config, reserve, n, rows=rows)
        for start in range(step, rows, step):
            fill_rows(cache, prefill(slice(start, start + step)), start, n)
        return cache

    def _generate_chunk(self, prompts, params: SamplingParams, out: Rollout) -> None:
        tok = self.tokenizer
        device = next(self.model.parameters()).device
        ids, mask = left_pad(prompts, tok.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        cache = self._prompt_cache(ids, mask, params)
        ids, mask = ids.repeat_interleave(params.n, dim=0), mask.repeat_interleave(params.n, dim=0)
        rows = [p for p in prompts for _ in range(params.n)]
        new, token_logp = sample(self.model, ids, mask, cache, params, tok.eos_token_id, tok.pad_token_id,
                                 self.drop_finished)
        for prompt, seq, seq_logp in zip(rows, new.tolist(), token_logp.tolist()):
            length = seq.index(tok.eos_token_id) + 1 if tok.eos_token_id in seq else len(seq)
            completion = seq[:length]
            out.prompt_ids.append(prompt)
            out.completion_ids.append(completion)
            out.logprobs.append(seq_logp[:length])
            out.texts.append(tok.decode(completion, skip_special_tokens=True))
