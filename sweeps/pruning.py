"""Optuna pruning on the intermediate held-out evaluations of a training run."""

from __future__ import annotations

import lightning as L
import optuna


class PruningCallback(L.Callback):
    """After each intermediate evaluation: `trial.report(accuracy, step)`, then raise
    `optuna.TrialPruned` when the pruner says so.

    Placed after the run's EvalCallback (run_training's `extra_callbacks`), so on the same hook it
    sees that step's evaluation. The step-0 evaluation (before any update, the same for every
    trial) is not reported, and the run's last step is reported but never pruned: its result is
    already the objective.
    """

    def __init__(self, trial: optuna.Trial, metric: str = "eval/accuracy"):
        self.trial, self.metric = trial, metric
        self.reported: dict[int, float] = {}
        self.pruned_at: int | None = None
        self.mlflow_run_id: str | None = None

    def _eval_curve(self, trainer) -> list[dict]:
        from harness.callbacks import EvalCallback

        for callback in trainer.callbacks:
            if isinstance(callback, EvalCallback):
                return callback.recorder.eval_curve
        raise RuntimeError("PruningCallback needs the run's EvalCallback")

    def on_train_start(self, trainer, module):
        self.mlflow_run_id = getattr(trainer.logger, "run_id", None)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        curve = self._eval_curve(trainer)
        if not curve:
            return
        point = curve[-1]
        step = int(point["step"])
        if step <= 0 or step in self.reported:
            return
        value = float(point[self.metric])
        self.trial.report(value, step)
        self.reported[step] = value
        if not trainer.should_stop and self.trial.should_prune():
            self.pruned_at = step
            raise optuna.TrialPruned(f"{self.metric} {value:.4f} at step {step} is below the pruner's threshold")
