# The two commands of the README. Both set up the pinned environment first (idempotent).
PY := .venv/bin/python

.PHONY: setup demo test
setup:
	bash tools/setup_env.sh

demo: setup
	bash tools/demo.sh

test: setup
	$(PY) -m pytest -q tests
