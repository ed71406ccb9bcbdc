# The two commands of the README. Both set up the pinned environment first (idempotent).
# MMREFVLM_VENV moves the venv (default .venv), MMREFVLM_CACHE the wheel cache (tools/setup_env.sh).
VENV := $(or $(MMREFVLM_VENV),.venv)
PY := $(VENV)/bin/python
# test processes (pytest-xdist): one per core unless TEST_WORKERS says otherwise
WORKERS := $(or $(TEST_WORKERS),$(shell nproc))

.PHONY: setup demo test
setup:
	bash tools/setup_env.sh

demo: setup
	bash tools/demo.sh

test: setup
	$(PY) -m pytest -q -n $(WORKERS) --dist loadfile tests projects
