"""The HF engine's decoding loop: what `generate(do_sample=...)` does for our sampling parameters,
without its per-call and per-step machinery.

On the tiny model at the TRL benchmark's size (16 prompts x 4, ~16 decoding steps) the engine
spent 41-56 ms per call outside the model's forwards with `generate` (configuration merging and
validation, logits-processor and stopping-criteria lists, input preparation every step) and
29-43 ms with this loop. The loop runs the same forwards with the same inputs (the last token,
the 2-D attention mask or none when it is all ones, position ids that count real tokens, logits
of the last position only) and samples as `generate` does (temperature, then top-p, then softmax
and `torch.multinomial` from the global generator; argmax when greedy; finished rows get the pad
token), so rollouts are the same token for token. By default (the engine's `drop_finished`) rows
that have ended leave the batch as decoding goes on, each row still drawing with its own noise:
the same tokens from fewer rows, unless a smaller product's rounding tips a near tie. Unlike
`generate`, it applies no setting of the model's `generation_config` (top-k, repetition
penalty): only `SamplingParams`, as the vLLM engine does. For Llama-architecture models every
step after the first goes through `llama_decode.decoding_step`, which computes the forward's
logits bitwise without its per-call machinery (on the tiny model at the TRL benchmark's size,
generation about 10 % faster).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicCache

from algorithms.batch import positions
from algorithms.rollout import SamplingParams
from harness.engines.llama_decode import cache_supported, decoding_step


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Scores outside the smallest set of tokens whose probability reaches `top_p` set to -inf
    (nucleus sampling; the most likely token always stays), as transformers' `TopPLogitsWarper`."""
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = 0
    return scores.masked_fill(remove.scatter(1, order, remove), -float("inf"))


def draw(probs: torch.Tensor, rows: int, kept: torch.Tensor | None) -> torch.Tensor:
    """One token per row of `probs` [b, V], drawn as `torch.multinomial(probs, 1)` draws them
    (argmax of probs / Exp(1) noise), with the noise of all `rows` rows of the batch drawn and the
    `kept` ones used: rows still decoding draw what they would have drawn beside the dropped ones,
    and the generator moves on as if nothing had been dropped. Without `kept`, bitwise
    `torch.multinomial` (tokens and the generator's state after it)."""
    noise = torch.empty((rows, probs.shape[-1]), dtype=probs.dtype, device=probs.device).exponential_(1)
    return torch.argmax(probs / (noise if kept is None else noise[kept]), dim=-1)


def refill(running: torch.Tensor) -> torch.Tensor:
    """The rows to keep, in their new order, for a batch whose rows `running` [B] (booleans) still
    decode: the first k = running.sum() places keep their row if it runs, and each other place takes
    a running row from behind place k, in order. Only those rows move in the cache."""
    count = int(running.sum())
    order = torch.arange(count, device=running.device)
    holes = (~running[:count]).nonzero().squeeze(1)
    order[holes] = running[count:].nonzero().squeeze(1) + count
    return order


def sample(model, ids: torch.Tensor, mask: torch.Tensor, cache: Cache | None, params: SamplingParams,
           eos_id: int | None, pad_id: int, drop_finished: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [B, T], logp [B, T]) for left-padded prompts `ids`/`mask` [B, L]: T <= max_new_tokens
    new tokens per row (pad after a row's EOS; T stops when every row has ended) and each token's
    log-probability under the processed scores it was drawn from (temperature and top-p applied).
    The log-probabilities are taken step by step, bitwise what the log-softmax of all the steps'
    scores stacked gives: the [B, T, V] scores are never held (with SmolLM2's 49,152-token
    vocabulary, 64 rows x 256 tokens of them are 3.2 GB, and their log-softmax as much again).
    `cache` may hold the keys and values of a prefix of the prompts.

    With `drop_finished`, rows that have ended leave the batch (and the cache) once a quarter of
    the rows still decoded have: later steps compute only the rows still running. Each row draws
    with the noise it would have drawn in the whole batch (`draw`), so its tokens change only where
    the smaller matrix products round its logits differently and that tips a draw (a near tie);
    once a row is dropped, its later columns hold the pad token with log-probability 0 (rows that
    ended but are still in the batch get the pad token's, as without dropping)."""
    if params.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {params.max_new_tokens}")
    rows = ids.shape[0]
    position = positions(mask)
    attention = None if bool(mask.all()) else mask  # generate drops an all-ones mask too
    cache = cache if cache is not None else DynamicCache(config=model.config)
    past = cache.get_seq_length()
    inputs, step_positions = ids[:, past:], position[:, past:]
    greedy = params.temperature <= 0
    unfinished = torch.ones(rows, dtype=torch.long, device=ids.device)
    # Written in place: a step leaves no tensor of its own behind (kept small tensors between the
    # steps' big freed ones grew the heap by 1.3 GB over 256 steps of a 49k vocabulary, 64 rows).
    tokens = torch.full((rows, params.max_new_tokens), pad_id, dtype=torch.long, device=ids.device)
    logps = torch.zeros((rows, params.max_new_tokens), dtype=torch.float32, device=ids.device)
    kept = None  # the rows still in the batch, once some have been dropped
    step = decoding_step(model) if cache_supported(cache) else None
    for t in range(params.max_new_tokens):
        if step is not None and inputs.shape[1] == 1:
            out = step(inputs, step_positions, attention, cache)
        else:
            out = model(input_ids=inputs, attention_mask=attention, position_ids=step_positions, past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1].to(copy=True, dtype=torch.float32)
        if greedy:
            chosen = torch.argmax(logits, dim=-1)
        else:
            if params.temperature != 1.0:
                logits = logits / params.temperature
            if params.top_p < 1.0:
                logits = top_p_filter(logits, params.top_p)
            chosen = draw(torch.softmax(logits, dim=-1), rows, kept)
        chosen = chosen * unfinished + pad_id * (1 - unfinished)
        logp = logits.log_softmax(-1).gather(-1, chosen[:, None]).squeeze(1)
        if not greedy and bool(logp.isnan().any()):  # what torch.multinomial refuses, refused by name
            raise RuntimeError(f"sampling step {t}: the model's next-token probabilities hold NaN or inf")
        if kept is None:
            tokens[:, t], logps[:, t] = chosen, logp
        else:
            tokens[kept, t], logps[kept, t] = chosen, logp
        if eos_id is not None:
            unfinished = unfinished & (chosen != eos_id)
        running = int(unfinished.sum())
        if running == 0:
            break
        inputs, step_positions = chosen[:, None], step_positions[:, -1:] + 1
        if attention is not None:
            attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=-1)
        if drop_finished and running <= 3 * unfinished.shape[0] // 4:
            keep = refill(unfinished.bool())
            kept = keep if kept is None else kept[keep]
            inputs, step_positions, unfinished = inputs[keep], step_positions[keep], unfinished[keep]
            attention = None if attention is None else attention[keep]
            cache.batch_select_indices(keep)
    return tokens[:, :t + 1], logps[:, :t + 1]
