"""`rlvr-bench eval`: the metrics (pass@k, maj@k), the prompts, the lm-eval task YAMLs, and the
two backends agreeing on the same greedy completions."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path

import pytest

import tasks
from harness.cli import main
from harness.evaluate import answer_key, majority_vote, pass_at_k, sample_metrics
from harness.prompts import PROMPT_VERSION, SYSTEM_PROMPT, format_prompt

# $RLVR_DATA_DIR, else the layout CI clones into: <repo>/../shared/data (as tests/tasks/test_benchmarks.py).
DATA_DIR = os.environ.get("RLVR_DATA_DIR") or str(Path(__file__).resolve().parents[2].parent / "shared" / "data")
LM_EVAL_TASKS = ("gsm8k", "math500", "aime24", "aime25", "amc23")


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch):
    monkeypatch.setenv("RLVR_DATA_DIR", DATA_DIR)


@pytest.fixture(scope="session")
def smollm2_dir():
    from harness.smollm2 import ensure_smollm2

    return str(ensure_smollm2())


# --- metrics -----------------------------------------------------------------------------------


def test_pass_at_k_matches_the_closed_form():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))  # 0.7
    assert pass_at_k(10, 3, 4) == pytest.approx(1 - math.comb(7, 4) / math.comb(10, 4))
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 4) == 1.0  # n - c < k: every k-subset holds the correct one
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_majority_vote_takes_the_most_frequent_stated_answer():
    assert majority_vote(["7", "3", "7", None], [1.0, 0.0, 1.0, 0.0]) == 1.0
    assert majority_vote(["3", "7", "3", "7"], [0.0, 1.0, 0.0, 1.0]) == 0.0  # tie: first stated wins
    assert majority_vote([None, None, "7"], [0.0, 0.0, 1.0]) == 1.0  # no-answers do not vote
    assert majority_vote([None, None], [0.0, 0.0]) == 0.0
    # No marked answer at all: the verifier's own search decided; maj@1 is pass@1.
    assert majority_vote([None], [1.0]) == 1.0 and majority_vote([None, None], [1.0, 0.0]) == 1.0
    with pytest.raises(ValueError):
        majority_vote(["1"], [1.0, 0.0])


def test_answer_key_reads_the_stated_answer():
    assert answer_key("so\n#### 1,234") == "1234"
    assert answer_key("\\boxed{1} then \\boxed{\\frac{1}{ 2}}") == "\\frac{1}{2}"
    assert answer_key("no answer here") is None
    assert answer_key("#### ") is None


def test_sample_metrics_on_hand_made_verdicts():
    v = tasks.Verdict
    completions = ["#### 5", "#### 5", "#### 4",  # prompt 0: majority 5 (right)
                   "#### 1", "", "#### 2"]  # prompt 1: nothing right
    verdicts = [v(1.0, "ok"), v(1.0, "ok"), v(0.0, "ok"), v(0.0, "ok"), v(0.0, "no_answer"), v(0.0, "ok")]
    m = sample_metrics(completions, verdicts, samples=3)
    assert m["eval/accuracy"] == pytest.approx(2 / 6)
    assert m["eval/pass_at_k"] == pytest.approx(0.5)
    assert m["eval/maj_at_k"] == pytest.approx(0.5)
    assert m["eval/status/ok"] == 5 and m["eval/status/no_answer"] == 1
    with pytest.raises(ValueError):
        sample_metrics(completions, verdicts, samples=4)


# --- prompts -----------------------------------------------------------------------------------


def test_chat_prompts_carry_the_system_message_and_the_answer_format(smollm2_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    gsm8k = tasks.get("gsm8k").load("test", limit=1)[0]
    math500 = tasks.get("math500").load("test", limit=1)[0]
    chat = format_prompt(tokenizer, gsm8k.prompt, "chat")
    assert chat.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
    assert "Give the final answer after '####'.<|im_end|>" in chat
    assert chat.endswith("<|im_start|>assistant\n")
    assert "Put the final answer in \\boxed{}." in format_prompt(tokenizer, math500.prompt, "chat")
    assert format_prompt(tokenizer, gsm8k.prompt, "plain") == f"Q: {gsm8k.prompt}\nA: "
    with pytest.raises(ValueError, match="prompt style"):
        format_prompt(tokenizer, gsm8k.prompt, "fancy")


# --- lm-eval task YAMLs -------------------------------------------------------------------------


def test_lm_eval_yaml_version_is_the_prompt_version():
    from harness.lm_eval_bridge import TASK_DIR

    template = (TASK_DIR / "_default_template_yaml").read_text()
    assert f"version: {float(PROMPT_VERSION)}" in template
    for name in LM_EVAL_TASKS:
        assert "include: _default_template_yaml" in (TASK_DIR / f"rlvr_{name}.yaml").read_text()


def _lm_eval_docs(tmp_path, prompt_style: str) -> dict:
    from lm_eval.tasks import TaskManager

    from harness.lm_eval_bridge import lm_eval_task_name, render_tasks

    render_tasks(tmp_path / "tasks", DATA_DIR, prompt_style)
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    names = [lm_eval_task_name(t) for t in LM_EVAL_TASKS]
    return manager.load(names)["tasks"]


def test_every_lm_eval_task_sees_our_examples_and_prompts(tmp_path):
    task_dict = _lm_eval_docs(tmp_path, "plain")
    for name in LM_EVAL_TASKS:
        ours = tasks.get(name).load("test")
        lm_task = task_dict[f"rlvr_{name}"]
        docs = list(lm_task.test_docs())
        assert len(docs) == len(ours), name  # the full split: 1319, 500, 30, 30, 40
        assert [d["id"] for d in docs] == [ex.id for ex in ours]
        assert [d["answer"] for d in docs] == [ex.answer for ex in ours]
        assert [lm_task.doc_to_text(d) for d in docs[:20]] == [f"Q: {ex.prompt}\nA: " for ex in ours[:20]]
        assert lm_task.config.metadata["version"] == float(PROMPT_VERSION)


def test_render_tasks_names_a_missing_data_dir(tmp_path):
    from harness.lm_eval_bridge import render_tasks

    with pytest.raises(FileNotFoundError, match="--data-dir"):
        render_tasks(tmp_path / "out", tmp_path / "nowhere", "chat")


# --- the two backends on the same completions ---------------------------------------------------


def _replay_lm(completions: dict[str, str], tokenizer):
    """An lm-eval model that answers each prompt with a given completion (KeyError on any prompt
    our evaluator would not have sent)."""
    from lm_eval.api.model import LM

    class ReplayLM(LM):
        def generate_until(self, requests, disable_tqdm: bool = False):
            return [completions[r.args[0]] for r in requests]

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

        @property
        def tokenizer_name(self) -> str:
            return "replay"

        def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
            return tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

    return ReplayLM()


@pytest.mark.parametrize("task_name", ["gsm8k", "math500"])
def test_lm_eval_scores_the_same_completions_as_our_evaluator(task_name, smollm2_dir):
    from transformers import AutoTokenizer

    from harness.lm_eval_bridge import run_lm_eval

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    task = tasks.get(task_name)
    examples = task.load("test", limit=8)
    # Right (the gold solution), wrong (another example's), and no answer, by turns.
    texts = [ex.solution if i % 3 == 0 else examples[(i + 1) % 8].solution if i % 3 == 1 else "I am not sure."
             for i, ex in enumerate(examples)]
    prompts = [format_prompt(tokenizer, ex.prompt, "chat") for ex in examples]
    records = run_lm_eval(smollm2_dir, task_name, DATA_DIR, "chat", limit=8, max_new_tokens=16,
                          lm=_replay_lm(dict(zip(prompts, texts, strict=True)), tokenizer), log=lambda *_: None)
    assert [r["prompt"] for r in records] == prompts
    assert [r["completion"] for r in records] == texts
    verdicts = task.reward_many(texts, examples)
    ours = sample_metrics(texts, verdicts, samples=1)["eval/accuracy"]
    theirs = sum(r["lm_eval_pass_at_1"] for r in records) / len(records)
    assert [r["lm_eval_pass_at_1"] for r in records] == [v.score for v in verdicts]
    assert ours == theirs == pytest.approx(3 / 8)


def test_both_backends_give_the_same_greedy_completions_and_pass_at_1(tmp_path, smollm2_dir):
    from harness.eval_command import EvalConfig, run_eval

    for task_name in ("gsm8k", "math500"):
        results = {}
        for backend in ("ours", "lm-eval"):
            config = EvalConfig(model=smollm2_dir, task=task_name, limit=3, max_new_tokens=10, backend=backend, engine="hf",
                                output_dir=str(tmp_path), experiment="agree", threads=1)
            results[backend] = run_eval(config, log=lambda *_: None)
        ours, theirs = results["ours"], results["lm-eval"]
        assert [r["prompt"] for r in ours["records"]] == [r["prompt"] for r in theirs["records"]]
        assert [r["completion"] for r in ours["records"]] == [r["completion"] for r in theirs["records"]]
        assert [r["score"] for r in ours["records"]] == [r["lm_eval_pass_at_1"] for r in theirs["records"]]
        assert ours["metrics"]["eval/accuracy"] == theirs["metrics"]["eval/accuracy"]
        assert theirs["metrics"]["eval/lm_eval_disagreements"] == 0
        assert ours["params"]["prompt_style"] == "chat" and ours["params"]["prompt_version"] == PROMPT_VERSION
    evals = tmp_path / "agree" / "evals"
    assert (evals / f"gsm8k-{Path(smollm2_dir).name}-lm-eval.completions.jsonl").exists()


def test_lm_eval_with_our_vllm_engine_sees_our_prompts_and_scores_our_completions(tmp_path, smollm2_dir):
    """`--backend lm-eval --engine vllm`: lm-eval's tasks, chat template and scoring; our vLLM engine."""
    from harness.eval_command import EvalConfig, run_eval

    results = {}
    for backend in ("ours", "lm-eval"):
        config = EvalConfig(model=smollm2_dir, task="gsm8k", limit=4, max_new_tokens=24, backend=backend,
                            engine="vllm", output_dir=str(tmp_path), experiment="agree-vllm")
        results[backend] = run_eval(config, log=lambda *_: None)
    ours, theirs = results["ours"], results["lm-eval"]
    assert theirs["params"]["engine"] == "vllm"
    assert [r["prompt"] for r in ours["records"]] == [r["prompt"] for r in theirs["records"]]
    completions = [r["completion"] for r in theirs["records"]]
    assert completions == [r["completion"] for r in ours["records"]] and all(completions)
    assert [r["score"] for r in ours["records"]] == [r["lm_eval_pass_at_1"] for r in theirs["records"]]
    assert theirs["metrics"]["eval/lm_eval_disagreements"] == 0


# --- the command ---------------------------------------------------------------------------------


def test_eval_command_logs_pass_at_k_maj_at_k_and_completions_to_mlflow(tmp_path, tiny_model_dir, capsys):
    code = main(["eval", "--model", str(tiny_model_dir), "--task", "arithmetic", "--limit", "6", "--samples", "4",
                 "--max-new-tokens", "40", "--output-dir", str(tmp_path), "--experiment", "cmd", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "cmd" / "evals" / f"arithmetic-{Path(tiny_model_dir).name}-ours.json").read_text())
    m = record["metrics"]
    assert 0.0 <= m["eval/accuracy"] <= m["eval/pass_at_k"] <= 1.0
    assert m["eval/prompts"] == 6 and m["eval/samples_per_prompt"] == 4
    assert sum(v for k, v in m.items() if k.startswith("eval/status/")) == 24
    assert record["params"]["temperature"] == 1.0 and record["params"]["prompt_style"] == "plain"
    lines = (tmp_path / "cmd" / "evals" / f"arithmetic-{Path(tiny_model_dir).name}-ours.completions.jsonl").read_text()
    rows = [json.loads(line) for line in lines.splitlines()]
    assert len(rows) == 24 and [r["sample"] for r in rows[:4]] == [0, 1, 2, 3]
    # The metrics are those of the saved completions.
    correct = [sum(r["score"] for r in rows[4 * p:4 * p + 4]) for p in range(6)]
    assert m["eval/accuracy"] == pytest.approx(sum(correct) / 24)
    assert m["eval/pass_at_k"] == pytest.approx(sum(c > 0 for c in correct) / 6)
    assert tasks.verify(rows[0]["gold"], rows[0]["completion"]).score == rows[0]["score"]

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.metrics["eval/pass_at_k"] == pytest.approx(m["eval/pass_at_k"])
    assert run.data.tags["engine"] == "vllm"  # --engine auto, and setup installs vLLM
    assert run.data.metrics["eval/maj_at_k"] == pytest.approx(m["eval/maj_at_k"])
    assert run.data.params["prompt_version"] == PROMPT_VERSION
    assert run.data.tags["task"] == "arithmetic"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["completions.jsonl"]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--greedy", "--samples", "3"], "--greedy"),
        (["--samples", "3", "--temperature", "0"], "--samples 3"),
        (["--backend", "lm-eval", "--samples", "2"], "--backend lm-eval"),
        (["--backend", "lm-eval", "--task", "arithmetic"], "lm-eval tasks"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_eval_command_errors_name_the_flag(flags, message, tmp_path, capsys):
    argv = ["eval", "--model", "tiny", "--task", "gsm8k", "--output-dir", str(tmp_path), *flags]  # a later --task wins
    assert main(argv) == 2
    assert message in capsys.readouterr().err
