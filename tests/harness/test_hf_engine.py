import torch

import tasks
from algorithms import losses
from algorithms.batch import build_batch, positions
from algorithms.rollout import SamplingParams
from harness.engines.hf import HFEngine, left_pad
from harness.models import load_policy
from harness.prompts import encode_prompts


def _setup(tiny_model_dir):
    tokenizer, model = load_policy(str(tiny_model_dir))
    examples = tasks.get("arithmetic").load("test", limit=6)
    prompts = encode_prompts(tokenizer, [ex.prompt for ex in examples])
    return tokenizer, model, prompts


def test_left_padding_does_not_change_greedy_completions(tiny_model_dir):
    tokenizer, model, prompts = _setup(tiny_model_dir)
    assert len({len(p) for p in prompts}) > 1  # the batch really is padded
    engine = HFEngine(model, tokenizer)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=24)
    batched = engine.generate(prompts, greedy)
    for i, prompt in enumerate(prompts):
        alone = engine.generate([prompt], greedy)
        assert alone.completion_ids[0] == batched.completion_ids[i]


def test_sampled_logprobs_match_the_trainers_recomputation(tiny_model_dir):
    tokenizer, model, prompts = _setup(tiny_model_dir)
    engine = HFEngine(model, tokenizer)
    rollout = engine.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=24, seed=3))
    assert len(rollout) == 2 * len(prompts)
    assert all(c[-1] == tokenizer.eos_token_id or len(c) == 24 for c in rollout.completion_ids)
    batch = build_batch(rollout, [0.0] * len(rollout), tokenizer.pad_token_id, 2)
    with torch.no_grad():
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids, logits_to_keep=batch.response_width + 1)
        recomputed = losses.token_logp(out.logits[:, :-1], batch.input_ids[:, batch.prompt_width:])
    diff = ((recomputed - batch.sample_logp).abs() * batch.response_mask).max()
    assert diff < 1e-4, f"max |logp difference| {diff}"


def test_same_seed_same_rollout_different_seed_different(tiny_model_dir):
    tokenizer, model, prompts = _setup(tiny_model_dir)
    engine = HFEngine(model, tokenizer)
    a = engine.generate(prompts, SamplingParams(n=4, max_new_tokens=24, seed=7))
    b = engine.generate(prompts, SamplingParams(n=4, max_new_tokens=24, seed=7))
    c = engine.generate(prompts, SamplingParams(n=4, max_new_tokens=24, seed=8))
    assert a.completion_ids == b.completion_ids
    assert a.completion_ids != c.completion_ids


def test_samples_of_one_prompt_share_its_prefill_and_sample_what_separate_rows_would(tiny_model_dir):
    tokenizer, model, prompts = _setup(tiny_model_dir)
    engine = HFEngine(model, tokenizer)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=5)
    prompt_cache = engine._prompt_cache(*left_pad(prompts, tokenizer.pad_token_id), params)
    assert prompt_cache.get_seq_length() == max(map(len, prompts)) - 1  # every prompt but its last token
    assert prompt_cache.layers[0].keys.shape[0] == 4 * len(prompts)
    shared = engine.generate(prompts, params)
    # The same rows given one by one (n=1): no shared prefill, the same random stream.
    separate = engine.generate([p for p in prompts for _ in range(4)], SamplingParams(
        n=1, temperature=1.0, max_new_tokens=24, seed=5))
    assert shared.completion_ids == separate.completion_ids
    assert len(set(map(tuple, shared.completion_ids))) > len(prompts)  # samples really differ
    for a, b in zip(shared.logprobs, separate.logprobs):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-4)


def test_a_chunked_prefill_samples_what_one_prefill_of_every_prompt_would(tiny_model_dir):
    tokenizer, model, prompts = _setup(tiny_model_dir)
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=24, seed=3)
    whole = HFEngine(model, tokenizer, prefill_rows=64)
    chunked = HFEngine(model, tokenizer, prefill_rows=4)  # 6 prompts: slices of 4 and 2
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    assert whole._prompt_cache(ids, mask, params).get_seq_length() == 0  # one slice: decoding prefills them itself
    cache = chunked._prompt_cache(ids, mask, params)
    assert cache.get_seq_length() == ids.shape[1] - 1 and cache.layers[0].keys.shape[0] == len(prompts)
    a, b = whole.generate(prompts, params), chunked.generate(prompts, params)
    assert a.completion_ids == b.completion_ids
    for x, y in zip(a.logprobs, b.logprobs):
        assert torch.allclose(torch.tensor(x), torch.tensor(y), atol=1e-4)


def test_a_chunked_prefill_writes_each_slice_into_the_buffers_as_concatenating_them_would(tiny_model_dir):
    """Slices of prompts go straight into the reserved buffers, repeated for their samples: the same
    keys and values, bitwise, as the slices' caches concatenated and then repeated, in buffers with
    room for the new tokens that decoding writes into."""
    tokenizer, model, prompts = _setup(tiny_model_dir)
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=24, seed=3)
    engine = HFEngine(model, tokenizer, prefill_rows=4)  # 6 prompts: slices of 4 and 2
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    pos = positions(mask)
    with torch.inference_mode():
        cache = engine._prompt_cache(ids, mask, params)
        slices = [model(input_ids=ids[s, :-1], attention_mask=mask[s, :-1], position_ids=pos[s, :-1],
                        use_cache=True).past_key_values for s in (slice(0, 4), slice(4, 6))]
    for i, layer in enumerate(cache.layers):
        for got, parts in ((layer.keys, [c.layers[i].keys for c in slices]),
                           (layer.values, [c.layers[i].values for c in slices])):
            assert torch.equal(got, torch.cat(parts).repeat_interleave(3, dim=0))
        assert layer.keys.data_ptr() == layer._buffers[0].data_ptr()
        assert layer._buffers[0].shape[-2] == ids.shape[1] - 1 + 24


def test_dropping_finished_rows_samples_the_same_tokens_from_fewer_rows(tiny_model_dir):
    """Decoding with finished rows dropped computes fewer rows per step once some have ended, and
    draws what the whole batch draws: the same tokens (each row keeps its own noise), their
    log-probabilities equal up to the smaller products' float rounding."""
    tokenizer, model, prompts = _setup(tiny_model_dir)
    params = SamplingParams(n=8, temperature=1.0, max_new_tokens=40, seed=11)
    rows_per_step = []
    handle = model.register_forward_hook(lambda module, args, output: rows_per_step.append(output.logits.shape[0]))
    try:
        dropping = HFEngine(model, tokenizer, drop_finished=True).generate(prompts, params)
        steps = len(rows_per_step)
        whole = HFEngine(model, tokenizer, drop_finished=False).generate(prompts, params)
    finally:
        handle.remove()
    dropped, kept = rows_per_step[1:steps], rows_per_step[steps + 1:]  # after each prompt prefill
    assert set(kept) == {8 * len(prompts)} and len(kept) == len(dropped)  # the same number of steps
    assert dropped[0] == 8 * len(prompts) and dropped[-1] < dropped[0] // 2  # stragglers decode alone
    assert dropped == sorted(dropped, reverse=True)
    assert dropping.completion_ids == whole.completion_ids
    assert len({len(c) for c in whole.completion_ids}) > 3  # rows really end at different steps
    for a, b in zip(dropping.logprobs, whole.logprobs):
        assert len(a) == len(b) and torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)


def test_dropping_rows_moves_only_the_rows_whose_place_changes_within_the_same_buffers():
    """`ReservedLayer.batch_select_indices` keeps the chosen rows in the chosen order, bitwise, in
    the buffers it already has (no second buffer), for the order decoding picks (`refill`: dropped
    places taken by running rows from the back) and for any other; later tokens go after them."""
    from harness.engines.decode import refill
    from harness.engines.kv_cache import ReservedLayer

    running = torch.ones(80, dtype=torch.bool)
    running[[1, 5, 6, 30, 77, 78]] = False
    order = refill(running)
    assert order.tolist() == [0, 74, 2, 3, 4, 75, 76, *range(7, 30), 79, *range(31, 74)]
    assert sorted(order.tolist()) == running.nonzero().squeeze(1).tolist()
    for indices in (order, torch.tensor([0, 1, 2, *range(4, 80, 2), 79]), torch.tensor([9, 3, 40, 0])):
        keys, values = torch.randn(80, 2, 5, 4), torch.randn(80, 2, 5, 4)
        layer = ReservedLayer(reserve=3)
        layer.fill(keys, values)
        buffer = layer._buffers[0].data_ptr()
        layer.batch_select_indices(indices)
        assert torch.equal(layer.keys, keys[indices]) and torch.equal(layer.values, values[indices])
        assert layer.keys.data_ptr() == buffer
        new_keys, new_values = torch.randn(len(indices), 2, 1, 4), torch.randn(len(indices), 2, 1, 4)
        got_keys, got_values = layer.update(new_keys, new_values)
        assert torch.equal(got_keys, torch.cat([keys[indices], new_keys], dim=-2))
        assert torch.equal(got_values, torch.cat([values[indices], new_values], dim=-2))
        assert got_keys.data_ptr() == buffer


def test_the_noise_draw_is_torch_multinomial():
    """`decode.draw` without dropped rows is `torch.multinomial(probs, 1)` bitwise, and leaves the
    generator where multinomial does; with dropped rows, each kept row gets its own draw."""
    from harness.engines.decode import draw

    probs = torch.softmax(3 * torch.randn(64, 40, generator=torch.Generator().manual_seed(0)), dim=-1)
    torch.manual_seed(4)
    expected, after = torch.multinomial(probs, 1).squeeze(1), torch.rand(3)
    torch.manual_seed(4)
    assert torch.equal(draw(probs, 64, None), expected) and torch.equal(torch.rand(3), after)
    kept = torch.tensor([3, 17, 40, 63])
    torch.manual_seed(4)
    assert torch.equal(draw(probs[kept], 64, kept), expected[kept])


def test_sampling_refuses_probabilities_that_are_not_finite(tiny_model_dir):
    """As `torch.multinomial` did: a model whose logits hold NaN gets an error, not tokens."""
    import pytest

    from harness.engines.decode import sample

    tokenizer, model, prompts = _setup(tiny_model_dir)
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    with torch.no_grad():
        model.lm_head.weight[3, 0] = float("nan")
        with pytest.raises(RuntimeError, match="sampling step 0: .* NaN"):
            sample(model, ids, mask, None, SamplingParams(max_new_tokens=4, seed=1), tokenizer.eos_token_id,
                   tokenizer.pad_token_id, drop_finished=True)


def test_hf_engine_options_reach_the_engine_and_bad_ones_name_the_key(tiny_model_dir):
    import pytest

    from harness.engines import engine_options, make_engine

    tokenizer, model, _ = _setup(tiny_model_dir)
    engine = make_engine("hf", model, tokenizer, options={"prefill_rows": 32, "max_batch": 128})
    assert (engine.prefill_rows, engine.max_batch) == (32, 128)
    assert make_engine("hf", model, tokenizer).prefill_rows == 0
    with pytest.raises(ValueError, match="kv_cache_gib"):
        engine_options("hf", {"kv_cache_gib": 1})
    with pytest.raises(ValueError, match="engine_options.prefill_rows"):
        engine_options("hf", {"prefill_rows": -1})
    assert make_engine("hf", model, tokenizer).drop_finished
    assert not make_engine("hf", model, tokenizer, options={"drop_finished": False}).drop_finished
    with pytest.raises(ValueError, match="engine_options.drop_finished: expected true or false"):
        engine_options("hf", {"drop_finished": 1})


def test_engine_sections_apply_to_their_engine_only():
    import pytest

    from harness.engines import engine_options
    from harness.engines.vllm import VLLMOptions

    both = {"hf": {"prefill_rows": 32}, "vllm": {"kv_cache_gb": 2.0}, "max_batch": 64}
    assert engine_options("hf", {k: v for k, v in both.items() if k != "max_batch"}) == {"prefill_rows": 32}
    assert engine_options("hf", both) == {"prefill_rows": 32, "max_batch": 64}
    assert engine_options("vllm", {k: v for k, v in both.items() if k != "max_batch"}) == VLLMOptions(kv_cache_gb=2.0)
    with pytest.raises(ValueError, match="engine_options.hf: expected a mapping"):
        engine_options("hf", {"hf": 32})
    with pytest.raises(ValueError, match="engine_options.prefill_rows"):
        engine_options("hf", {"hf": {"prefill_rows": -1}})


def test_the_reserved_cache_samples_what_transformers_own_cache_does(tiny_model_dir, monkeypatch):
    from harness.engines import hf
    from harness.engines.kv_cache import ReservedLayer

    tokenizer, model, prompts = _setup(tiny_model_dir)
    engine = HFEngine(model, tokenizer)
    cases = [SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=5),  # prompt cache, then generate
             SamplingParams(n=1, temperature=1.0, max_new_tokens=24, seed=5),  # generate prefills the prompts
             SamplingParams(n=1, temperature=0.0, max_new_tokens=24)]
    made = []
    real = hf.reserved_cache
    monkeypatch.setattr(hf, "reserved_cache", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    reserved = [engine.generate(prompts, params) for params in cases]
    assert len(made) == 3 and all(type(layer) is ReservedLayer for cache in made for layer in cache.layers)
    # Every token went into the buffers made at the prefill (room for the prompt and 24 tokens; a
    # regrown one would have more): the keys are views of them.
    width = max(map(len, prompts))
    for cache in made:
        for layer in cache.layers:
            assert layer.keys.data_ptr() == layer._buffers[0].data_ptr()
            assert width <= layer.get_seq_length() <= layer._buffers[0].shape[-2] <= width + 24
    def plain_cache(cache, config, reserve, repeat=1, rows=None):  # transformers' DynamicCache and repeat
        if cache is not None and repeat > 1:
            cache.batch_repeat_interleave(repeat)
        return cache

    monkeypatch.setattr(hf, "reserved_cache", plain_cache)
    plain = [engine.generate(prompts, params) for params in cases]
    for a, b in zip(reserved, plain):
        assert a.completion_ids == b.completion_ids
        assert a.logprobs == b.logprobs  # bitwise: the same numbers in the same shapes


def test_the_decoding_loop_samples_what_transformers_generate_does(tiny_model_dir):
    """`decode.sample` against `generate` with the arguments the engine used to pass it: the same
    tokens and, bitwise, their log-probabilities under the scores generate drew them from, with a
    shared prompt cache, with top-p and temperature, and greedy with generate's own prefill."""
    from harness.engines.decode import sample

    tokenizer, model, prompts = _setup(tiny_model_dir)
    engine = HFEngine(model, tokenizer)
    model.eval()
    cases = [SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=5),
             SamplingParams(n=2, temperature=0.7, top_p=0.9, max_new_tokens=24, seed=6),
             SamplingParams(n=1, temperature=0.0, max_new_tokens=24)]
    for params in cases:
        def prepared():
            ids, mask = left_pad(prompts, tokenizer.pad_token_id)
            cache = engine._prompt_cache(ids, mask, params)
            torch.manual_seed(params.seed)
            return ids.repeat_interleave(params.n, dim=0), mask.repeat_interleave(params.n, dim=0), cache

        with torch.no_grad():
            ids, mask, cache = prepared()
            tokens, logp = sample(model, ids, mask, cache, params, tokenizer.eos_token_id, tokenizer.pad_token_id)
            ids, mask, cache = prepared()
            greedy = params.temperature <= 0
            reference = model.generate(
                input_ids=ids, attention_mask=mask, past_key_values=cache, do_sample=not greedy,
                temperature=None if greedy else params.temperature, top_p=None if greedy else params.top_p, top_k=None,
                max_new_tokens=params.max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, return_dict_in_generate=True, output_scores=True)
        assert torch.equal(tokens, reference.sequences[:, ids.shape[1]:]), params
        # Each token's log-probability under the scores generate drew it from, bitwise.
        drawn_from = torch.stack(reference.scores, dim=1).log_softmax(-1)
        assert torch.equal(logp, drawn_from.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)), params
        assert (tokens == tokenizer.eos_token_id).any()  # some rows really ended early


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    from harness.engines.decode import top_p_filter

    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.97, 0.01, 0.01, 0.01]]))
    kept = torch.isfinite(top_p_filter(scores, 0.75))
    assert kept.tolist() == [[True, True, False, False], [True, False, False, False]]
    assert torch.isfinite(top_p_filter(scores, 1.0)).all()


def test_decoding_nothing_is_refused_by_name(tiny_model_dir):
    import pytest

    from harness.engines.decode import sample

    tokenizer, model, prompts = _setup(tiny_model_dir)
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sample(model, ids, mask, None, SamplingParams(max_new_tokens=0), tokenizer.eos_token_id, tokenizer.pad_token_id)
