"""Run our benchmarks through lm-evaluation-harness (`rlvr-bench eval --backend lm-eval`).

The task YAMLs live in `tasks/lm_eval/` (one base template, one file per task, `utils.py` with
the hooks). lm-eval needs the data files' absolute paths in the YAML, so they are rendered into
a temporary folder first: `@DATA_DIR@` becomes the data folder and `doc_to_text` follows the
prompt style, so lm-eval sends the model exactly the text `harness.prompts.format_prompt` builds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from harness.prompts import PLAIN_TEMPLATE, SYSTEM_PROMPT, STYLES

TASK_DIR = Path(__file__).resolve().parent.parent / "tasks" / "lm_eval"
TASKS = ("gsm8k", "math500", "aime24", "aime25", "amc23")
PLACEHOLDER = "@DATA_DIR@"


def lm_eval_task_name(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"--backend lm-eval: task {task!r} has no lm-eval YAML; lm-eval tasks: {', '.join(TASKS)}")
    return f"rlvr_{task}"


def render_tasks(dest: Path, data_dir: str | Path, prompt_style: str) -> Path:
    """Copy tasks/lm_eval into `dest` with the data folder and the prompt style filled in."""
    if prompt_style not in STYLES:
        raise ValueError(f"--prompt-style {prompt_style!r} is not one of {STYLES}")
    data_dir = Path(data_dir).expanduser().resolve()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir}: no such folder")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # A JSON string is a valid YAML double-quoted scalar: safe for any path and template.
    path_text = json.dumps(str(data_dir))[1:-1]
    plain = json.dumps(PLAIN_TEMPLATE.format(prompt="{{prompt}}"))
    for source in sorted(TASK_DIR.iterdir()):
        if source.suffix == ".py":
            shutil.copy(source, dest / source.name)
        elif source.suffix == ".yaml" or source.name.endswith("_yaml"):
            text = source.read_text().replace(PLACEHOLDER, path_text)
            if prompt_style == "plain":
                text = text.replace("\ndoc_to_text: prompt\n", f"\ndoc_to_text: {plain}\n")
            (dest / source.name).write_text(text)
    return dest


def run_lm_eval(model_path: str, task: str, data_dir: str | Path, prompt_style: str, limit: int | None,
                max_new_tokens: int, batch_size: int = 1, log=print, lm=None) -> list[dict]:
    """Greedy completions of `task` through `lm_eval.simple_evaluate` on a local checkpoint
    (lm-eval's `hf` model), or through the given lm-eval `LM` instance `lm`.

    Returns one record per example, in data order: id, prompt (the exact model input),
    completion, gold and lm-eval's own `pass_at_1` for it."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    name = lm_eval_task_name(task)
    with tempfile.TemporaryDirectory(prefix="rlvr-lm-eval-") as tmp:
        render_tasks(Path(tmp), data_dir, prompt_style)
        manager = TaskManager(include_path=tmp, include_defaults=False)
        chat = prompt_style == "chat"
        log(f"lm-eval: {name} on {model_path} (limit {limit}, max_gen_toks {max_new_tokens}, {prompt_style} prompts)")
        out = lm_eval.simple_evaluate(
            model="hf" if lm is None else lm,
            # No BOS added: our engine encodes the formatted prompt with add_special_tokens=False.
            model_args=f"pretrained={model_path},dtype=float32,device=cpu,add_bos_token=False" if lm is None else None,
            tasks=[name],
            task_manager=manager,
            limit=limit,
            num_fewshot=0,
            batch_size=batch_size,
            gen_kwargs={"max_gen_toks": max_new_tokens, "do_sample": False, "temperature": 0.0},
            apply_chat_template=chat,
            system_instruction=SYSTEM_PROMPT if chat else None,
            log_samples=True,
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
            fewshot_random_seed=0,
        )
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    return [
        {
            "id": s["doc"]["id"],
            "prompt": s["arguments"][0][0] if s.get("arguments") else None,
            "completion": s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"],
            "gold": s["doc"]["answer"],
            "lm_eval_pass_at_1": float(s["pass_at_1"]),
        }
        for s in samples
    ]
