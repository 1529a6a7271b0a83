"""The MLflow logger sends metrics in batches: every value arrives, in order, with the time it was
logged; what waits goes out when a checkpoint is written, when the run's record asks, at the end."""

import mlflow

from harness.mlflow_logger import ResilientMLFlowLogger


def test_metrics_wait_for_the_next_batch_and_all_arrive_in_order(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = ResilientMLFlowLogger(experiment_name="batched", tracking_uri=uri, send_every_s=3600.0)
    client = mlflow.MlflowClient(uri)

    def sent():
        return [(m.step, m.value) for m in client.get_metric_history(logger.run_id, "loss")]

    logger.log_metrics({"loss": 1.0, "acc": 0.5}, step=1)  # the first metrics go out at once
    assert sent() == [(1, 1.0)]
    for step in range(2, 6):
        logger.log_metrics({"loss": float(step), "acc": step / 10}, step=step)
    assert sent() == [(1, 1.0)] and len(logger._pending) == 8  # waiting for the next batch
    logger.flush()  # as after a checkpoint
    assert sorted(sent()) == [(step, float(step)) for step in range(1, 6)]
    logger.log_metrics({"loss": 6.0, "note": "text", "missing": None}, step=6)  # not numbers: left out
    assert logger.status() == {"failures": 0, "first_error": None, "unsent_metric_values": 0}
    logger.log_metrics({"loss": 7.0}, step=7)
    logger.finalize("success")
    assert sorted(sent()) == [(step, float(step)) for step in range(1, 8)]
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics == {"loss": 7.0, "acc": 0.5}
    # Timestamps are when each value was logged: non-decreasing in step order.
    stamps = [m.timestamp for m in sorted(client.get_metric_history(logger.run_id, "loss"), key=lambda m: m.step)]
    assert stamps == sorted(stamps)
