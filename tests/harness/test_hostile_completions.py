"""Completions that would run code if anything evaluated them: nothing runs, verdicts come in time, training goes on."""

import time

import tasks
from harness.engines.hf import HFEngine
from tasks.verify import STATUSES

TIMEOUT_S = 2.0


def hostile_completions(folder) -> list[str]:
    m = [folder / f"marker{i}" for i in range(12)]
    return [
        f"__import__('os').system('touch {m[0]}')",
        f"#### __import__('os').system('touch {m[1]}')",
        f"\\boxed{{__import__('subprocess').call(['touch', '{m[2]}'])}}",
        f"the answer is $(touch {m[3]})",
        f"#### `touch {m[4]}`",
        f"\\boxed{{\\immediate\\write18{{touch {m[5]}}}}}",
        f"\\input{{|touch {m[6]}}} \\boxed{{\\input{{/etc/passwd}}}}",
        f"#### exec(\"open('{m[7]}', 'w').write('x')\")",
        f"\\boxed{{eval(compile('open(\"{m[8]}\", \"w\")', 'x', 'exec'))}}",
        f"#### getattr(__builtins__, 'exec')(\"__import__('os').system('touch {m[9]}')\")",
        f"$$ {{}}.__class__.__base__.__subclasses__() $$ #### lambda: open('{m[10]}', 'w')",
        f"#### sympify(\"__import__('os').system('touch {m[11]}')\")",
    ]


def test_the_verifier_pool_evaluates_nothing_and_answers_within_the_timeout(tmp_path):
    texts = hostile_completions(tmp_path)
    examples = tasks.get("arithmetic").load("test", limit=1) * len(texts)
    task = tasks.get("arithmetic")
    tasks.verify("1", "#### 1")  # the pool is up
    for text, ex in zip(texts, examples, strict=True):
        started = time.perf_counter()
        [verdict] = task.reward_many([text], [ex], timeout_s=TIMEOUT_S)
        assert time.perf_counter() - started < TIMEOUT_S + 2.0, text
        assert verdict.status in STATUSES and verdict.score == 0.0, (text, verdict)
    assert list(tmp_path.iterdir()) == []


def test_a_training_run_on_hostile_completions_goes_on_and_runs_nothing(make_run, tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    texts = hostile_completions(markers)

    class HostileEngine(HFEngine):
        """The real HF engine, its decoded texts replaced by hostile ones on their way to the reward."""

        def generate(self, prompt_ids, params):
            rollout = super().generate(prompt_ids, params)
            rollout.texts = [texts[i % len(texts)] for i in range(len(rollout))]
            return rollout

    import harness.engines

    monkeypatch.setattr(harness.engines, "make_engine", lambda name, model, tokenizer, **kw: HostileEngine(model, tokenizer))
    run = make_run("smoke", algorithm="grpo", seed=0, max_steps=2, eval_every=0, threads=1,
                   output_dir=str(tmp_path / "results"))
    record = run_training_quiet(run)
    assert record["summary"]["steps"] == 2
    train_rows = [row for row in record["history"] if "train/reward_mean" in row]
    assert [row["train/reward_mean"] for row in train_rows] == [0.0, 0.0]
    assert record["eval_curve"][-1]["eval/accuracy"] == 0.0
    # 32 verdicts per step on 2 workers: far below 32 timeouts back to back.
    assert all(row["timing_s/reward"] < 32 * TIMEOUT_S / 2 for row in train_rows)
    assert list(markers.iterdir()) == []


def run_training_quiet(run):
    from harness.train import run_training

    return run_training(run, progress=False)
