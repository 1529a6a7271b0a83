import pytest

from harness.budget import Budget, budget_metrics, flops


def test_flops_counts_each_pass_once():
    counters = {"samples": 4, "prompt_tokens": 100, "generated_tokens": 50, "forward_tokens": 150, "train_tokens": 150}
    # 2N * (prefill 100 + decode 50 + reference 150) + 6N * train 150, with N = 1000
    assert flops(counters, 1000) == 2 * 1000 * 300 + 6 * 1000 * 150
    m = budget_metrics(counters, 1000, seconds=2.5)
    assert m["budget/samples"] == 4 and m["budget/generated_tokens"] == 50 and m["budget/seconds"] == 2.5


@pytest.mark.parametrize("text", ["samples", "steps=3", "samples=abc", "tokens=0", "flops=-1"])
def test_bad_budget_is_a_clear_error(text):
    with pytest.raises(ValueError, match="--budget"):
        Budget.parse(text)


def test_budget_parses_and_names_its_metric():
    assert Budget.parse("tokens=1e6") == Budget("tokens", 1e6)
    assert Budget.parse("tokens=5").metric() == "budget/generated_tokens"
    assert Budget.parse("samples=5").metric() == "budget/samples"
