"""The harness: config, engines, Lightning/MLflow wiring, budgets and the rlvr-bench CLI."""
