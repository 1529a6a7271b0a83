"""PruningCallback on a deterministic objective: real Optuna pruner, real EvalCallback curve, no training."""

from types import SimpleNamespace

import optuna
import pytest

from harness.callbacks import EvalCallback, RunRecorder
from sweeps.pruning import PruningCallback


def fake_trainer():
    eval_callback = EvalCallback(RunRecorder(None, parameters=1), task=None, examples=[], encode_fn=None)
    return SimpleNamespace(callbacks=[eval_callback], should_stop=False, logger=None), eval_callback.recorder


def evaluate(callback, trainer, recorder, step, accuracy, last=False):
    recorder.eval_curve.append({"step": step, "eval/accuracy": accuracy})
    trainer.should_stop = last
    callback.on_train_batch_end(trainer, None, None, None, step)


def test_bad_trial_is_pruned_at_its_first_evaluation_below_the_median():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = study.ask()
    trainer, recorder = fake_trainer()
    callback = PruningCallback(good)
    evaluate(callback, trainer, recorder, 0, 0.25)  # before training: not reported
    for step in (1, 2):
        evaluate(callback, trainer, recorder, step, 0.5)
    study.tell(good, 0.5)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.5}

    bad = study.ask()
    trainer, recorder = fake_trainer()
    callback = PruningCallback(bad)
    with pytest.raises(optuna.TrialPruned):
        evaluate(callback, trainer, recorder, 1, 0.0)
    assert callback.pruned_at == 1 and callback.reported == {1: 0.0}

    late = study.ask()  # as bad, but its only evaluation is the run's last step: reported, kept
    trainer, recorder = fake_trainer()
    callback = PruningCallback(late)
    evaluate(callback, trainer, recorder, 2, 0.0, last=True)
    assert callback.pruned_at is None and callback.reported == {2: 0.0}


def test_same_step_is_reported_once_and_a_missing_eval_callback_is_an_error():
    study = optuna.create_study(direction="maximize")
    trainer, recorder = fake_trainer()
    callback = PruningCallback(study.ask())
    evaluate(callback, trainer, recorder, 1, 0.5)
    callback.on_train_batch_end(trainer, None, None, None, 1)  # no new evaluation since
    assert callback.reported == {1: 0.5}
    with pytest.raises(RuntimeError, match="EvalCallback"):
        callback.on_train_batch_end(SimpleNamespace(callbacks=[], should_stop=False), None, None, None, 1)
