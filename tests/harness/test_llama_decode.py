import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.cache_utils import DynamicCache

from algorithms.batch import positions
from harness.engines.kv_cache import reserved_cache
from harness.engines.llama_decode import cache_supported, decoding_step


def _model(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    settings = dict(vocab_size=40, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, max_position_embeddings=128, attn_implementation="sdpa")
    return LlamaForCausalLM(LlamaConfig(**{**settings, **overrides})).eval()


def _prompts(rows: int, padded: bool) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 40, (rows, 9), generator=generator)
    mask = torch.ones(rows, 9, dtype=torch.long)
    if padded:
        mask[::2, :3] = 0
        ids[mask == 0] = 0
    return ids, mask


@pytest.mark.parametrize("shape", [
    {},  # the tiny model's kind: every head its own keys and values
    {"num_key_value_heads": 2, "tie_word_embeddings": True},  # SmolLM2's kind: grouped-query, tied head
])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("reserved", [False, True])
def test_a_step_gives_the_models_own_logits_and_cache_bitwise(shape, padded, reserved):
    model = _model(**shape)
    step = decoding_step(model)
    assert step is not None
    ids, mask = _prompts(6, padded)
    pos = positions(mask)
    with torch.inference_mode():
        caches = []
        for _ in range(2):  # one cache for the model's forward, one for the step, from the same prefill
            cache = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True).past_key_values
            caches.append(reserved_cache(cache, model.config, 8) if reserved else cache)
        assert cache_supported(caches[1])
        token, at = ids[:, -1:], pos[:, -1:]
        attention = mask if padded else None
        for _ in range(5):
            at = at + 1
            if attention is not None:
                attention = torch.cat([attention, attention.new_ones((6, 1))], dim=-1)
            expected = model(input_ids=token, attention_mask=attention, position_ids=at, past_key_values=caches[0],
                             use_cache=True, logits_to_keep=1).logits
            got = step(token, at, attention, caches[1]).logits
            assert got.shape == expected.shape == (6, 1, 40)
            assert torch.equal(got, expected)
            for mine, theirs in zip(caches[1].layers, caches[0].layers):
                assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)
            token = expected[:, -1].argmax(-1, keepdim=True)


def test_the_decoding_loop_takes_the_step_and_samples_what_the_forward_would(monkeypatch):
    from harness.engines import decode
    from harness.engines.decode import sample
    from algorithms.rollout import SamplingParams

    model = _model()
    ids, mask = _prompts(4, padded=True)
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=6, seed=3)
    calls = []
    real = decode.decoding_step

    def counted(m):
        step = real(m)
        return lambda *args: calls.append(1) or step(*args)

    results = {}
    for name, factory in (("step", counted), ("forward", lambda m: None)):
        monkeypatch.setattr(decode, "decoding_step", factory)
        torch.manual_seed(params.seed)
        with torch.inference_mode():
            results[name] = sample(model, ids, mask, None, params, eos_id=None, pad_id=0)
    assert len(calls) == 5  # every token after the first (the prompt's forward)
    assert torch.equal(results["step"][0], results["forward"][0])
    assert torch.equal(results["step"][1], results["forward"][1])


def test_the_models_forward_hooks_see_every_step():
    model = _model()
    seen = []
    model.register_forward_hook(lambda module, args, output: seen.append(output.logits.shape))
    step = decoding_step(model)
    ids, mask = _prompts(3, padded=False)
    with torch.inference_mode():
        cache = model(input_ids=ids, use_cache=True).past_key_values
        step(ids[:, -1:], positions(mask)[:, -1:] + 1, None, cache)
    assert seen == [(3, 9, 40), (3, 1, 40)]


@pytest.mark.parametrize("change", ["train", "eager", "attention_bias", "mlp_bias", "gelu", "submodule_hook",
                                    "pre_hook", "replaced_norm", "adapter", "global_hook"])
def test_models_it_does_not_reproduce_decode_through_their_forward(change):
    overrides = {"eager": {"attn_implementation": "eager"}, "attention_bias": {"attention_bias": True},
                 "mlp_bias": {"mlp_bias": True}, "gelu": {"hidden_act": "gelu"}}
    model = _model(**overrides.get(change, {}))
    if change == "train":
        model.train()
    elif change == "submodule_hook":
        model.model.layers[1].self_attn.q_proj.register_forward_hook(lambda *args: None)
    elif change == "pre_hook":
        model.register_forward_pre_hook(lambda *args: None)
    elif change == "replaced_norm":
        model.model.layers[0].input_layernorm.forward = lambda hidden: hidden
    elif change == "adapter":  # a module of another class in the tree (as LoRA's wrapped projections)
        class Adapted(torch.nn.Linear):
            pass

        attention = model.model.layers[0].self_attn
        attention.v_proj = Adapted(64, 64, bias=False)
    elif change == "global_hook":  # torch runs these on every module's forward
        handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
        try:
            assert decoding_step(model) is None
        finally:
            handle.remove()
        assert decoding_step(model) is not None
        return
    assert decoding_step(model) is None


def test_caches_with_other_layers_are_not_stepped():
    from transformers.cache_utils import DynamicSlidingWindowLayer

    cache = DynamicCache(config=_model().config)
    assert cache_supported(cache)
    cache.layers[0] = DynamicSlidingWindowLayer(sliding_window=4)
    assert not cache_supported(cache)
