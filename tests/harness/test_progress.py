"""compare's progress display: runs done of the total, running runs' step and last accuracy,
elapsed and ETA; plain lines when not on a terminal."""

import queue

from harness.progress import CompareProgress


def test_plain_lines_say_done_running_step_accuracy_and_eta(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("harness.progress.time.monotonic", lambda: clock[0])
    lines, q = [], queue.Queue()
    steps = {("grpo", 0): 10, ("ppo", 0): 10, ("ppo", 1): 10}
    with CompareProgress(steps, skipped=1, queue=q, log=lines.append, terminal=False, every_s=30) as progress:
        progress.start(("grpo", 0))
        assert lines[-1] == "compare: 1/4 runs done; grpo seed 0 step 0/10; elapsed 0m00s"
        clock[0] += 10
        q.put((("grpo", 0), 4, None))
        q.put((("grpo", 0), 5, 0.312))
        progress.poll()  # within 30 s of the last line: nothing printed
        assert len(lines) == 1 and progress.running[("grpo", 0)] == (5, 0.312)
        clock[0] += 30
        progress.poll()
        # 5 of 30 planned steps in 40 s: 25 left at 8 s each.
        assert lines[-1] == "compare: 1/4 runs done; grpo seed 0 step 5/10, accuracy 0.312; elapsed 0m40s, ETA 3m20s"
        q.put((("grpo", 0), 6, None))  # an accuracy stays until the next evaluation
        progress.poll()
        assert progress.running[("grpo", 0)] == (6, 0.312)
        progress.finish(("grpo", 0))  # a run's end is always printed
        assert lines[-1].startswith("compare: 2/4 runs done; elapsed 0m40s, ETA 1m20s")


def test_messages_of_runs_not_running_are_ignored():
    q = queue.Queue()
    progress = CompareProgress({("grpo", 0): 4}, queue=q, log=lambda *a: None, terminal=False)
    q.put((("rebel", 3), 2, 0.5))
    progress.poll()
    assert progress.running == {} and progress.eta_s() is None


def test_a_ddp_runs_steps_come_through_its_progress_file(tmp_path):
    from harness.progress import ProgressFile

    path = tmp_path / "grpo-seed0.progress.json"
    progress = CompareProgress({("grpo", 0): 4}, log=lambda *a: None, terminal=False)
    progress.start(("grpo", 0))
    progress.follow(("grpo", 0), path)
    progress.poll()  # no file yet: still step 0
    assert progress.running[("grpo", 0)] == (0, None)
    writer = ProgressFile(path)
    writer.put_nowait((("grpo", 0), 1, 0.25))
    writer.put_nowait((("grpo", 0), 3, 0.5))  # replaced whole: the reader sees the last step only
    progress.poll()
    assert progress.running[("grpo", 0)] == (3, 0.5)
    assert not list(tmp_path.glob("*.tmp"))
    progress.finish(("grpo", 0))
    assert progress.files == {}
