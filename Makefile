# pilotnet_brain: all set-up happens on demand. On a fresh machine (python3 + venv only):
#   make test   # create .venv, install '.[dev,ros]', run the test suite
#   make run    # same set-up, then the main driving job
# Other targets: make install | colcon-check | clean
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

PYTHON3 ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip --no-input
STAMP   := $(VENV)/.installed
EXTRAS  ?= dev,ros,torch,onnx,tf

RUN_BRAINS ?= explicit,pilotnet_fp32
CPU_PRESETS := explicit,pilotnet_fp32,pilotnet_torch_fp32_traced,pilotnet_torch_int8_dynamic,pilotnet_torch_int8_static,\
	pilotnet_torch_int8_qat,pilotnet_onnx_fp32,pilotnet_onnx_int8,pilotnet_tf_fp32,pilotnet_tflite_fp32,\
	pilotnet_tflite_fp16,pilotnet_tflite_dynamic,pilotnet_tflite_int8

COLCON_WS := build/colcon_ws
PKG       := pilotnet_brain

export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test run colcon-check clean data model model-stage1 data-dagger model-stage2 data-dagger2 model-stage3 data-dagger3 data-sweepers evaluate optimize offline-benchmark gpu-benchmark benchmark-all

$(PY):
	$(PYTHON3) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Reinstall only when the packaging metadata changes (editable install: code edits need nothing).
$(STAMP): setup.py setup.cfg | $(PY)
	$(PIP) install --progress-bar off -e '.[$(EXTRAS)]'
	@test -x $(VENV)/bin/pilotnet-brain || { echo "error: pip did not install $(VENV)/bin/pilotnet-brain" >&2; exit 1; }
	touch $@

install: $(STAMP)

# pytest exit 5 = no tests collected: always an error here, say so loudly.
test: $(STAMP)
	@echo "$(PY) -m pytest -q test"
	@$(PY) -m pytest -q test || { rc=$$?; if [ $$rc -eq 5 ]; then \
	    echo "ERROR: pytest collected no tests (exit 5); this repository always has tests" >&2; fi; \
	    exit $$rc; }

# The main job: the explicit brain and the shipped PilotNet drive the held-out test circuits through
# the real ROS 2 graph (sim_node + brain_node + metrics_node over DDS) on the embedded simulator.
run: $(STAMP)
	$(VENV)/bin/pilotnet-brain benchmark --brains $(RUN_BRAINS) \
	    --circuits simple_circuit,montreal,montmelo --directions ccw,cw --out runs/main

# --- PilotNet: reproduce the shipped weights (pilotnet_brain/models/pilotnet_fp32.safetensors) ---
# Training data: the expert on the training circuits, both directions, 2 laps each, with recovery
# perturbations and lighting variation (~20k frames, ~150 MB). Test data: the held-out circuits.
data: $(STAMP)
	$(VENV)/bin/pilotnet-brain record --circuits many_curves,nurburgring --direction both --laps 2 \
	    --lighting-variation 0.15 --seed 1 --out data/train
	$(VENV)/bin/pilotnet-brain record --circuits simple_circuit,montreal,montmelo --direction both \
	    --laps 1 --frame-stride 3 --seed 2 --out data/test

# DAgger, three rounds: a first model learns from the expert's own driving; it then drives the
# training circuits while the expert labels every frame it sees (data/dagger); a second model learns
# from both and drives again (data/dagger2); a third learns from all three and drives the training
# circuits plus `sweepers`, a training circuit of long gentle corners (data/dagger3), where the expert
# also drives (data/sweepers); the shipped model learns from all five. `make data model` runs the
# whole chain: ~2.5 h on 2 cores.
STAGE1_MODEL := runs/stage1/pilotnet_fp32.safetensors
STAGE2_MODEL := runs/stage2/pilotnet_fp32.safetensors
STAGE3_MODEL := runs/stage3/pilotnet_fp32.safetensors
TRAIN_CIRCUITS := many_curves,nurburgring
RECORD_TRAINING = $(VENV)/bin/pilotnet-brain record --direction both --laps 2 --lighting-variation 0.15
DAGGER_RECORD = $(RECORD_TRAINING) --driver pilotnet
TRAIN_MORE = --epochs 25 --seed 0 --samples-per-epoch 20000

model-stage1: $(STAMP)
	$(VENV)/bin/pilotnet-brain train --data data/train --out $(STAGE1_MODEL) --epochs 25 --seed 0

data-dagger: $(STAMP)
	test -f $(STAGE1_MODEL) || $(MAKE) model-stage1
	$(DAGGER_RECORD) --circuits $(TRAIN_CIRCUITS) --model $(STAGE1_MODEL) --seed 3 --out data/dagger

model-stage2: $(STAMP)
	test -f data/dagger/dataset.json || $(MAKE) data-dagger
	$(VENV)/bin/pilotnet-brain train --data data/train,data/dagger --out $(STAGE2_MODEL) $(TRAIN_MORE)

data-dagger2: $(STAMP)
	test -f $(STAGE2_MODEL) || $(MAKE) model-stage2
	$(DAGGER_RECORD) --circuits $(TRAIN_CIRCUITS) --model $(STAGE2_MODEL) --seed 4 --out data/dagger2

model-stage3: $(STAMP)
	test -f data/dagger2/dataset.json || $(MAKE) data-dagger2
	$(VENV)/bin/pilotnet-brain train --data data/train,data/dagger,data/dagger2 --out $(STAGE3_MODEL) $(TRAIN_MORE)

data-dagger3: $(STAMP)
	test -f $(STAGE3_MODEL) || $(MAKE) model-stage3
	$(DAGGER_RECORD) --circuits $(TRAIN_CIRCUITS),sweepers --model $(STAGE3_MODEL) --seed 5 --out data/dagger3

data-sweepers: $(STAMP)
	$(RECORD_TRAINING) --circuits sweepers --seed 6 --out data/sweepers

model: $(STAMP)
	test -f data/dagger3/dataset.json || $(MAKE) data-dagger3
	test -f data/sweepers/dataset.json || $(MAKE) data-sweepers
	$(VENV)/bin/pilotnet-brain train --data data/train,data/dagger,data/dagger2,data/dagger3,data/sweepers \
	    --out pilotnet_brain/models/pilotnet_fp32.safetensors $(TRAIN_MORE)

evaluate: $(STAMP)
	$(VENV)/bin/pilotnet-brain evaluate --data data/test --out runs/evaluate

# --- Optimised variants (needs data/train for calibration and QAT: `make data`) ---
optimize: $(STAMP)
	$(VENV)/bin/pilotnet-brain optimize --data data/train --out runs/optimized

offline-benchmark: $(STAMP)
	$(VENV)/bin/pilotnet-brain offline-benchmark --models runs/optimized --data data/test --out runs/offline_benchmark

# PyTorch CUDA FP32 vs FP16 vs CUDA graphs, batch 1 and 32, against CPU FP32 (needs an NVIDIA GPU).
gpu-benchmark: $(STAMP)
	$(VENV)/bin/pilotnet-brain gpu-benchmark --out runs/gpu_benchmark.json

# Every CPU preset through the ROS 2 graph on the test circuits (after `make optimize`).
benchmark-all: $(STAMP)
	$(VENV)/bin/pilotnet-brain benchmark --brains $(CPU_PRESETS) \
	    --circuits simple_circuit,montreal,montmelo --directions ccw,cw --out runs/benchmark_all

# Build the package the ROS 2 way (colcon, ament_python) in a scratch workspace and check the
# install tree has what `ros2 run` / `ros2 launch` / the ament index need.
colcon-check: $(STAMP)
	rm -rf $(COLCON_WS)
	mkdir -p $(COLCON_WS)/src/$(PKG)
	@# copy the working tree (tracked + untracked, minus ignored: no .venv, build/, ...)
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard \
	        | while IFS= read -r -d '' f; do if [ -e "$$f" ]; then printf '%s\0' "$$f"; fi; done \
	        | tar --null -T - -cf - | tar -xf - -C $(COLCON_WS)/src/$(PKG); \
	else \
	    tar --exclude=./.venv --exclude=./build --exclude=./install --exclude=./log \
	        --exclude=./runs --exclude=./.git -cf - . | tar -xf - -C $(COLCON_WS)/src/$(PKG); \
	fi
	cd $(COLCON_WS) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	    $(CURDIR)/$(VENV)/bin/colcon --log-base log build --base-paths src \
	        --build-base build --install-base install
	@cd $(COLCON_WS)/install && set -e; \
	for f in lib/$(PKG)/pilotnet-brain lib/$(PKG)/brain_node lib/$(PKG)/sim_node lib/$(PKG)/metrics_node \
	         lib/$(PKG)/bag_recorder share/$(PKG)/package.xml share/$(PKG)/config/brains/pilotnet_fp32.yaml \
	         share/$(PKG)/launch/simulation.launch.py \
	         share/ament_index/resource_index/packages/$(PKG); do \
	    test -e "$(PKG)/$$f" || { echo "colcon-check: missing install/$(PKG)/$$f" >&2; exit 1; }; \
	    echo "colcon-check: ok  $$f"; \
	done; \
	test -x $(PKG)/lib/$(PKG)/pilotnet-brain || { echo "colcon-check: pilotnet-brain not executable" >&2; exit 1; }
	@cd $(COLCON_WS) && set +u && source install/setup.bash && set -u && cd /tmp && \
	    $(CURDIR)/$(PY) -c 'import pathlib, pilotnet_brain, pilotnet_brain.resources as r; \
	        f = pathlib.Path(pilotnet_brain.__file__).resolve(); \
	        ws = pathlib.Path("$(CURDIR)/$(COLCON_WS)/install").resolve(); \
	        assert ws in f.parents, f"imported {f}, not from {ws}"; \
	        print("colcon-check: ok  import pilotnet_brain from", f.parent); \
	        s = r.share_dir().resolve(); \
	        assert ws in s.parents, f"share_dir() is {s}, not in {ws}"; \
	        print("colcon-check: ok  resources.share_dir() =", s)' && \
	    $(CURDIR)/$(COLCON_WS)/install/$(PKG)/lib/$(PKG)/pilotnet-brain --help >/dev/null && \
	    echo "colcon-check: ok  lib/$(PKG)/pilotnet-brain --help runs"
	@echo "colcon-check: passed"

clean:
	rm -rf $(VENV) build install log *.egg-info $(PKG).egg-info .pytest_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
