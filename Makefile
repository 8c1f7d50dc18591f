# Toonlab: `make run` sets up .venv and launches the studio; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-cpu

.PHONY: setup browser run test test-avx2 bench setup-gpu clean

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

setup: $(STAMP)

# The quality yardstick (dlib + its models), for studio.quality and tests/test_quality.py only.
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(TEST_STAMP)

# The Webcam tab's browser test drives Debian's chromium with a fake camera. Installed here when missing and
# we are root with apt-get; otherwise that test skips and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is not installed (needs root and apt-get): the browser tests will skip"; }

run: setup
	$(BIN)/python app.py $(ARGS)

test: setup $(TEST_STAMP) browser
	$(BIN)/python -m pytest -q tests $(ARGS)

# The tests whose outcome depends on onnxruntime's int8 kernels (they add up differently per CPU class) on an
# emulated AVX2-only CPU, the class this machine may not be (tools/emulated_cpu.sh; QEMU from the package registry;
# slow). OpenCV keeps off its AVX2 kernels there: QEMU 7.2 crashes in them (cvtColor to HSV).
AVX2_TESTS := tests/test_students.py tests/test_realtime.py
test-avx2: setup $(TEST_STAMP)
	OPENCV_CPU_DISABLE=AVX2 tools/emulated_cpu.sh EPYC-Rome -- $(BIN)/python -m pytest -q -p no:cacheprovider \
		$(AVX2_TESTS) -k "int8 or engine" $(ARGS)

bench: setup
	$(BIN)/python -m studio.bench $(ARGS)

setup-gpu:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	grep -v -E '^(torch|onnxruntime)==' requirements.txt > $(VENV)/requirements-cpu-base.txt
	$(BIN)/python -m pip install -r $(VENV)/requirements-cpu-base.txt -r requirements-gpu.txt
	$(BIN)/python -m pip install --no-deps -r requirements-nodeps.txt

clean:
	rm -rf $(VENV)
