# The README's two commands. Both do all setup on a fresh clone first.
.PHONY: setup compare test

setup:
	bash scripts/setup.sh

compare: setup
	.venv/bin/rlvr-bench compare

test: setup
	.venv/bin/python -m pytest -q -n 2 --dist load --maxschedchunk 1 tests
