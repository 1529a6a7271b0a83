"""The `rlvr-bench` command: the harness's commands and the layers built on it (sweeps), composed here
so that the harness never imports what sits above it."""
