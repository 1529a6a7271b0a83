"""A new SQLite MLflow store created by several processes at once (two `train` commands with the
same output folder): MLflow's table migrations are not safe against that; ours run under a lock."""

import subprocess
import sys


def test_processes_creating_one_sqlite_store_at_once_all_succeed(tmp_path):
    code = ("import sys; from harness.tracking import ensure_experiment; "
            "print(ensure_experiment(sys.argv[1], 'shared'))")
    for attempt in range(2):
        uri = f"sqlite:///{tmp_path / f'mlflow-{attempt}.db'}"
        procs = [subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
        results = [(p.wait(timeout=300), p.stdout.read().strip(), p.stderr.read()[-2000:]) for p in procs]
        assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
        assert len({out for _, out, _ in results}) == 1  # one experiment, found by all
