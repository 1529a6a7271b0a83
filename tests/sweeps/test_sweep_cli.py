"""`rlvr-bench sweep` input errors: exit code 2 and a message naming the flag (no training starts)."""

import pytest

from rlvr_bench.cli import main


@pytest.mark.parametrize("flags, message", [
    (["--algorithm", "reinforce", "--trials", "2"], "unknown algorithm 'reinforce'"),
    (["--algorithm", "grpo", "--trials", "0"], "--trials must be >= 1"),
    (["--algorithm", "grpo", "--trials", "2", "--heartbeat", "5", "--grace", "5"], "--grace longer than it"),
    (["--algorithm", "grpo", "--trials", "2", "--storage", "postgresql+psycopg2://u:secret@127.0.0.1:1/x"],
     "--storage postgresql+psycopg2://u:***@127.0.0.1:1/x: cannot open the Optuna storage"),
    (["--algorithm", "grpo", "--trials", "2", "--space", "/nonexistent.yaml"], "/nonexistent.yaml: no search space"),
    (["--algorithm", "grpo", "--trials", "2", "--preset", "smoke", "--strategy", "ddp", "--devices", "2"],
     "--strategy ddp: a sweep runs its trials in this process"),
])
def test_sweep_flag_errors(tmp_path, capsys, flags, message):
    assert main(["sweep", *flags, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "secret" not in err
