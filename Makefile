# The two commands of the README:  make demo  (the main job)  and  make test  (the tests).
# Both create .venv with pip when it is absent; torch comes from the pinned CPU-usable wheels.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.qxai-installed
OUT    ?= demo-out

.PHONY: demo test test-slow lint venv readme clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/qxai demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# after `make demo`: the README's screenshot and headline numbers, from the saved run
readme: $(STAMP)
	$(VENV)/bin/qxai report $(OUT) --screenshot docs/report.png --readme README.md

clean:
	rm -rf $(OUT) .pytest_cache
