"""Optuna sweeps over each algorithm's search space (filled in by the sweeps issue)."""
