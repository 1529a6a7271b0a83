"""How a batch runs through a model: micro-batches, shared prompts, per-token passes.

A mixin of `RLModule`. Micro-batches keep groups (GRPO's G samples, REBEL's pairs) whole, are
ordered by length and compacted to their own padding; a group's prompt is computed once and its
keys and values repeated for the group's responses. Counters record the tokens computed.
"""

from __future__ import annotations

from typing import Callable

import torch

import algorithms.losses as losses
from algorithms.batch import RLBatch


class BatchPasses:
    """Needs `self.config` (`samples_per_prompt`, `shared_prompts`, `micro_batch_size`,
    `temperature`), `self.policy` and `self.counters`."""

    def shares_prompts(self, batch: RLBatch) -> bool:
        """Whether the batch's rows come in groups of `samples_per_prompt` with one prompt each
        (micro-batches keep groups whole), so that each prompt can be computed once per group."""
        g = self.samples_per_prompt
        if not self.config.shared_prompts or g < 2 or len(batch) % g:
            return False
        prompts = batch.input_ids[:, : batch.prompt_width].view(-1, g, batch.prompt_width)
        return bool((prompts == prompts[:, :1]).all())

    def computed_tokens(self, batch: RLBatch, model: torch.nn.Module | None = None) -> int:
        """Tokens a pass of `response_logits` through `model` (default: the policy) computes: a
        group's shared prompt counts once."""
        if not self._shares_prompts_in(model or self.policy, batch):
            return batch.num_tokens
        prompt_tokens = int(batch.attention_mask[:: self.samples_per_prompt, : batch.prompt_width].sum())
        return prompt_tokens + int(batch.response_mask.sum())

    def response_logits(self, model: torch.nn.Module, batch: RLBatch) -> torch.Tensor:
        """Logits predicting each response token: [n, T, V]; lm_head runs on the response only.

        With groups (GRPO's G samples, REBEL's pairs) each prompt runs once: its keys and values
        are repeated for the group's responses, which attend to them as to their own prompt (the
        same numbers up to float rounding; gradients flow back through the repeat). On the tiny
        policy, prompts ~72 tokens and responses ~15, a GRPO micro-batch of 8 x 8 runs 2.7x faster.
        """
        if self._shares_prompts_in(model, batch):
            return self._shared_prompt_logits(model, batch)
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids, logits_to_keep=batch.response_width + 1, use_cache=False)
        return out.logits[:, :-1].float()

    def _shares_prompts_in(self, model: torch.nn.Module, batch: RLBatch) -> bool:
        # With gradient checkpointing Hugging Face models return no cache to share.
        return self.shares_prompts(batch) and not getattr(model, "is_gradient_checkpointing", False)

    def _shared_prompt_logits(self, model: torch.nn.Module, batch: RLBatch) -> torch.Tensor:
        g, p = self.samples_per_prompt, batch.prompt_width
        first = slice(None, None, g)
        prompt = model(input_ids=batch.input_ids[first, :p], attention_mask=batch.attention_mask[first, :p],
                       position_ids=batch.position_ids[first, :p], use_cache=True, logits_to_keep=1)
        cache = prompt.past_key_values
        cache.batch_repeat_interleave(g)
        responses = model(input_ids=batch.input_ids[:, p:], attention_mask=batch.attention_mask,
                          position_ids=batch.position_ids[:, p:], past_key_values=cache, use_cache=False)
        # The prompt's last position predicts response token 0; response token t predicts t + 1.
        # float32 whatever the weights' dtype (a no-op in float32): log-probs and losses are computed in it.
        return torch.cat([prompt.logits[:, -1:].repeat_interleave(g, dim=0), responses.logits[:, :-1]], dim=1).float()

    def response_hidden(self, model: torch.nn.Module, batch: RLBatch) -> torch.Tensor:
        """Final hidden states predicting each response token: [n, T, H]; as `response_logits`
        without the output layer (shared prompts alike), for the chunked log-prob path."""
        decoder = model.get_decoder()
        if self._shares_prompts_in(model, batch):
            g, p = self.samples_per_prompt, batch.prompt_width
            first = slice(None, None, g)
            prompt = decoder(input_ids=batch.input_ids[first, :p], attention_mask=batch.attention_mask[first, :p],
                             position_ids=batch.position_ids[first, :p], use_cache=True)
            cache = prompt.past_key_values
            cache.batch_repeat_interleave(g)
            responses = decoder(input_ids=batch.input_ids[:, p:], attention_mask=batch.attention_mask,
                                position_ids=batch.position_ids[:, p:], past_key_values=cache, use_cache=False)
            last = prompt.last_hidden_state[:, -1:].repeat_interleave(g, dim=0)
            return torch.cat([last, responses.last_hidden_state[:, :-1]], dim=1)
        out = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      position_ids=batch.position_ids, use_cache=False)
        return out.last_hidden_state[:, -(batch.response_width + 1):-1]

    def logp_and_entropy(self, model: torch.nn.Module, batch: RLBatch,
                         entropy_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs and entropies of the responses, each [n, T]. With
        `logprob_chunk_size` > 0 the output layer runs that many positions at a time (no [n, T, V]
        logits); else on the whole micro-batch. The entropy carries a gradient only if asked."""
        tokens = batch.input_ids[:, batch.prompt_width:]
        temperature = self.config.temperature
        chunk = self.config.logprob_chunk_size
        if chunk > 0:
            check_plain_output_layer(model)
            return losses.chunked_logp_entropy(self.response_hidden(model, batch), model.get_output_embeddings(),
                                               tokens, temperature, chunk, entropy_grad)
        logits = self.response_logits(model, batch)
        logp = losses.token_logp(logits, tokens, temperature=temperature)
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            source = logits if entropy_grad else logits.detach()
            entropy = losses.entropy_from_logits(source / temperature)
        return logp, entropy

    def token_logp(self, model: torch.nn.Module, batch: RLBatch) -> torch.Tensor:
        if self.config.logprob_chunk_size > 0:
            return self.logp_and_entropy(model, batch)[0]
        return losses.token_logp(self.response_logits(model, batch), batch.input_ids[:, batch.prompt_width:],
                                 temperature=self.config.temperature)

    @torch.no_grad()
    def no_grad_logp(self, model: torch.nn.Module, batch: RLBatch) -> torch.Tensor:
        def logp(micro: RLBatch) -> torch.Tensor:
            self.counters["forward_tokens"] += self.computed_tokens(micro, model)
            return self.token_logp(model, micro)

        return self.per_token(batch, logp)

    def per_token(self, batch: RLBatch, fn: Callable[[RLBatch], torch.Tensor]) -> torch.Tensor:
        """[N, T] of `fn` ([n, T'] per response token) over the batch's micro-batches; exactly 0 where
        `response_mask` is 0, whichever micro-batch a row was in."""
        out = batch.response_mask.new_zeros(batch.response_mask.shape)
        for rows, micro in self.micro_batches(batch):
            out[rows, : micro.response_width] = fn(micro).to(out.dtype) * micro.response_mask
        return out

    @staticmethod
    def chunks(n: int, size: int, device: torch.device | str = "cpu") -> list[torch.Tensor]:
        return [torch.arange(s, min(s + size, n), device=device) for s in range(0, n, size)]

    def micro_batches(self, batch: RLBatch) -> list[tuple[torch.Tensor, RLBatch]]:
        """(rows, micro-batch) pairs that cover the batch: whole groups (or pairs), ordered by their
        longest response so that each micro-batch, compacted, pads to lengths like its own. The sum
        over micro-batches is the same whatever the order; padding no row needs is not computed."""
        g = self.samples_per_prompt
        longest = batch.response_mask.sum(-1).view(-1, g).max(-1).values
        order = torch.argsort(longest, stable=True)
        rows = (order[:, None] * g + torch.arange(g, device=order.device)).reshape(-1)
        if self.config.micro_batch_tokens > 0:
            prompt_lengths = batch.attention_mask[::g, : batch.prompt_width].sum(-1)
            groups = self.token_budget_groups(prompt_lengths[order].tolist(), longest[order].tolist())
            spans = [torch.arange(first * g, end * g, device=rows.device) for first, end in groups]
        else:
            spans = self.chunks(len(batch), self.micro_size(), rows.device)
        return [(rows[index], batch.select(rows[index]).compact()) for index in spans]

    def token_budget_groups(self, prompt_lengths: list[int], response_lengths: list[int]) -> list[tuple[int, int]]:
        """[first, end) spans of consecutive groups whose compacted micro-batch holds at most
        `micro_batch_tokens` token positions (padded prompt and response columns; a shared prompt
        once per group), as verl's dynamic batch size; a group larger than the budget goes alone."""
        g, budget = self.samples_per_prompt, self.config.micro_batch_tokens
        prompt_rows = 1 if self.config.shared_prompts and g > 1 else g
        spans, first, prompt, response = [], 0, 0, 0
        for i, (p, r) in enumerate(zip(prompt_lengths, response_lengths)):
            wider_prompt, wider_response = max(prompt, p), max(response, r)
            groups = i - first + 1
            if groups > 1 and groups * (prompt_rows * wider_prompt + g * wider_response) > budget:
                spans.append((first, i))
                first, wider_prompt, wider_response = i, p, r
            prompt, response = wider_prompt, wider_response
        spans.append((first, len(prompt_lengths)))
        return spans

    def micro_size(self) -> int:
        """Micro-batch size in samples, a multiple of samples_per_prompt so groups stay whole."""
        g = self.samples_per_prompt
        return max(g, self.config.micro_batch_size // g * g)


def check_plain_output_layer(model: torch.nn.Module) -> None:
    """The chunked path computes logits as `lm_head(hidden)`: models that scale or soft-cap their
    logits after the output layer (Gemma 2, Cohere) would get wrong numbers, so they are refused."""
    config = getattr(model, "config", None)
    for name in ("final_logit_softcapping", "logit_scale", "output_multiplier_scale"):
        if getattr(config, name, None) not in (None, 1, 1.0):
            raise ValueError(f"logprob_chunk_size > 0: {type(model).__name__} transforms its logits after the "
                             f"output layer ({name}={getattr(config, name)!r}); set logprob_chunk_size: 0")
    if model.get_output_embeddings() is None:
        raise ValueError(f"logprob_chunk_size > 0: {type(model).__name__} has no output layer to chunk")
