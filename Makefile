# The two commands of the README:  make demo  (the main job)  and  make test  (the tests).
# Both create .venv with pip when it is absent; torch comes from the pinned CPU-usable wheels.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.qxai-installed
OUT    ?= demo-out

.PHONY: demo test test-slow test-other-cpu lint venv readme clean

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

# The numerical tests again under another CPU kernel and one thread (docs/reproducibility.md): ATen's
# portable kernels, oneDNN limited to SSE4.1, MKL's reproducible-compatible path. A test that holds
# only at this machine's SIMD width or thread count fails here before it lands.
OTHER_CPU := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_CBWR=COMPATIBLE \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
NUMERIC_TESTS := tests/pipeline tests/evaluate tests/explain tests/anneal tests/analysis tests/models tests/probe
test-other-cpu: $(STAMP)
	env $(OTHER_CPU) $(PY) -m pytest -q -m "not slow and not browser" $(NUMERIC_TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# after `make demo`: the README's screenshot and headline numbers, from the saved run
readme: $(STAMP)
	$(VENV)/bin/qxai report $(OUT) --screenshot docs/report.png --readme README.md

clean:
	rm -rf $(OUT) .pytest_cache
