"""Golden files for the word-pooled tokenisation example (Learn Your Tokens, the eTok `myGPT`
"e2e" model), from an independent PyTorch implementation of `model.dsl`: the byte/word
segmentation of raw UTF-8 text, the per-word encoder with prefix slots (bidirectional, key
padding), the word-level causal minGPT LM, the per-word character decoder, the teacher-forced
pass, and greedy generation as nested loops (words outside, characters inside) with a growing KV
cache for the word-level LM.

Needs PyTorch, numpy and safetensors (never needed by the tests):

    python3 examples/word_pooled/reference.py

Reads `texts.txt` (one prompt per line, real text with multi-byte characters) and writes beside
this file (about 1.8 MB together):

  golden_weights.safetensors  the parameters under the DSL's names (`unit_emb.weight`,
                        `slot_pos`, `word_pos`, `encoder.0.attn.q_proj.weight`, `lm.1.mlp.fc1.bias`,
                        `decoder.0.ln_1.weight`, `lm_norm.weight`, `head.weight`, ...), drawn with
                        `torch.manual_seed(0)`; no training.
  golden.safetensors    `forward.words` i64 [B, W, C0] and `forward.lengths` i64 [B, W]: the
                        segmentation of the lines of texts.txt (rows padded with empty words to
                        the longest line); `forward.logits` [B, W - 1, C0, 256]; `forward.pooled`
                        [B, W * p, d] (the word encoder's prefix outputs, an intermediate);
                        `generate.words` / `generate.lengths` (the prompt: the first
                        GEN_PROMPT_WORDS words of every line) and the generated
                        `generate.new_words` i64 [B, max_new, C0], `generate.new_lengths`.

Segmentation (the same rule as `examples/src/word_pooled.rs`): a word is a maximal run of
alphanumeric characters, every other non-whitespace character is a word of its own; whitespace
separates words and is dropped; a word longer than C0 bytes is cut, at character boundaries, into
pieces of at most C0 bytes; the units are the UTF-8 bytes (1..255; 0 is the padding unit).

Every greedy decision is checked to be won by a margin far above f32 rounding.
"""

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent

# model.dsl's defaults
VOCAB, C0, P, D, HEADS, ENC_HEADS = 256, 8, 2, 64, 4, 4
LM_LAYERS, ENC_LAYERS, DEC_LAYERS, MAX_WORDS, MAX_NEW = 2, 2, 2, 64, 4
GEN_PROMPT_WORDS = 12


# ---------------------------------------------------------------- segmentation


def segment(text: str, canvas: int = C0) -> list:
    """Raw text -> list of words, each a bytes object of 1..canvas UTF-8 bytes."""
    words, run = [], ""

    def flush(w):
        piece = b""
        for ch in w:
            b = ch.encode("utf-8")
            if len(piece) + len(b) > canvas:
                words.append(piece)
                piece = b""
            piece += b
        if piece:
            words.append(piece)

    for ch in text:
        if ch == "\0":
            continue
        if ch.isalnum():
            run += ch
            continue
        if run:
            flush(run)
            run = ""
        if not ch.isspace():
            flush(ch)
    if run:
        flush(run)
    return words


def to_canvas(lines: list, w: int):
    """Lists of words -> (words i64 [B, w, C0], lengths i64 [B, w]), padded with empty words."""
    words = np.zeros((len(lines), w, C0), np.int64)
    lengths = np.zeros((len(lines), w), np.int64)
    for b, line in enumerate(lines):
        for i, word in enumerate(line[:w]):
            words[b, i, : len(word)] = list(word)
            lengths[b, i] = len(word)
    return torch.from_numpy(words), torch.from_numpy(lengths)


# ---------------------------------------------------------------- weights


def make_weights(seed=0, gain=3.0, d=D, lm_layers=LM_LAYERS, enc_layers=ENC_LAYERS, dec_layers=DEC_LAYERS, vocab=VOCAB,
                 prefix=P, canvas=C0, max_words=MAX_WORDS):
    g = torch.Generator().manual_seed(seed)

    def lin(name, out, inp, w):
        # `gain` x PyTorch's default bound: sharper attention, so that words and rows differ
        b = gain / math.sqrt(inp)
        w[name + ".weight"] = (torch.rand(out, inp, generator=g) * 2 - 1) * b
        w[name + ".bias"] = (torch.rand(out, generator=g) * 2 - 1) * b

    def ln(name, w):
        w[name + ".weight"] = 1.0 + 0.1 * torch.randn(d, generator=g)
        w[name + ".bias"] = 0.1 * torch.randn(d, generator=g)

    w = {"unit_emb.weight": torch.randn(vocab + prefix, d, generator=g),
         "slot_pos": 0.5 * torch.randn(prefix + canvas, d, generator=g),
         "word_pos": 0.5 * torch.randn(max_words * prefix, d, generator=g)}
    for stack, n in [("encoder", enc_layers), ("lm", lm_layers), ("decoder", dec_layers)]:
        for i in range(n):
            p = f"{stack}.{i}."
            ln(p + "ln_1", w)
            for proj in ["q_proj", "k_proj", "v_proj", "o_proj"]:
                lin(p + "attn." + proj, d, d, w)
            ln(p + "ln_2", w)
            lin(p + "mlp.fc1", 4 * d, d, w)
            lin(p + "mlp.fc2", d, 4 * d, w)
    ln("lm_norm", w)
    ln("dec_norm", w)
    w["head.weight"] = (torch.rand(vocab, d, generator=g) * 2 - 1) / math.sqrt(d)
    # the pad (end-of-word) row 4x larger, so that untrained words end before the canvas is full
    w["head.weight"][0] *= 4.0
    return w


# ---------------------------------------------------------------- the model


class WordPooledLM:
    def __init__(self, w, vocab=VOCAB, canvas=C0, prefix=P, heads=HEADS, enc_heads=ENC_HEADS):
        self.w, self.vocab, self.canvas, self.p = w, vocab, canvas, prefix
        self.heads, self.enc_heads = heads, enc_heads
        self.n = {s: len({k.split(".")[1] for k in w if k.startswith(s + ".")}) for s in ["encoder", "lm", "decoder"]}

    def lin(self, name, x):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def ln(self, name, x):
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], 1e-5)

    def attn(self, p, x, heads, mask=None, past=None):
        """minGPT CausalSelfAttention with an explicit boolean mask [N or 1, Tq, Tk] (True = may
        attend); past = (k, v) [N, H, P, dh] prepended. Returns (out, k_all, v_all)."""
        n, t, d = x.shape
        split = lambda y: y.view(n, t, heads, d // heads).transpose(1, 2)  # noqa: E731
        q = split(self.lin(p + "q_proj", x))
        k, v = split(self.lin(p + "k_proj", x)), split(self.lin(p + "v_proj", x))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        s = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
        if mask is not None:
            s = s.masked_fill(~mask[:, None], float("-inf"))
        y = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(n, t, d)
        return self.lin(p + "o_proj", y), k, v

    def block(self, p, x, heads, mask=None, past=None):
        a, k, v = self.attn(p + "attn.", self.ln(p + "ln_1", x), heads, mask, past)
        x = x + a
        h = self.lin(p + "mlp.fc2", F.gelu(self.lin(p + "mlp.fc1", self.ln(p + "ln_2", x)), approximate="tanh"))
        return x + h, k, v

    @staticmethod
    def causal(tq, tk):
        return (torch.arange(tk)[None, :] <= torch.arange(tq)[:, None] + (tk - tq))[None]

    def encode_words(self, units, lengths):
        """units [N, C0], lengths [N] -> prefix outputs [N, p, d]; each word alone."""
        n = units.shape[0]
        ids = torch.cat([torch.arange(self.p).expand(n, self.p) + self.vocab, units], dim=1)
        real = torch.cat([torch.ones(n, self.p, dtype=torch.bool),
                          torch.arange(self.canvas)[None] < lengths[:, None]], dim=1)
        x = self.w["unit_emb.weight"][ids] + self.w["slot_pos"]
        mask = real[:, None, :].expand(n, x.shape[1], x.shape[1])
        for i in range(self.n["encoder"]):
            x, _, _ = self.block(f"encoder.{i}.", x, self.enc_heads, mask)
        return x[:, : self.p]

    def pool(self, words, lengths):
        b, w, _ = words.shape
        return self.encode_words(words.reshape(b * w, -1), lengths.reshape(-1)).reshape(b, w * self.p, -1)

    def lm(self, x, start=0, cache=None):
        """Word-level LM over slots start.. ; cache: list of (k, v) per layer. Returns
        (lm_norm(x), new cache)."""
        x = x + self.w["word_pos"][start: start + x.shape[1]]
        new = []
        for i in range(self.n["lm"]):
            past = None if cache is None else cache[i]
            tk = x.shape[1] + (0 if past is None else past[0].shape[2])
            x, k, v = self.block(f"lm.{i}.", x, self.heads, self.causal(x.shape[1], tk), past)
            new.append((k, v))
        return self.ln("lm_norm", x), new

    def decode_chars(self, g, units):
        """g [N, p, d], units [N, C0] -> logits [N, C0, vocab]."""
        x = torch.cat([g, self.w["unit_emb.weight"][units]], dim=1) + self.w["slot_pos"]
        c = x.shape[1]
        for i in range(self.n["decoder"]):
            x, _, _ = self.block(f"decoder.{i}.", x, self.enc_heads, self.causal(c, c))
        return F.linear(self.ln("dec_norm", x[:, self.p - 1: c - 1]), self.w["head.weight"])

    def forward(self, words, lengths):
        b, w, _ = words.shape
        z = self.pool(words, lengths)
        g, _ = self.lm(z)
        g = g.reshape(b, w, self.p, -1)[:, :-1].reshape(-1, self.p, g.shape[-1])
        logits = self.decode_chars(g, words[:, 1:].reshape(-1, self.canvas))
        return logits.reshape(b, w - 1, self.canvas, -1), z

    def generate(self, words, lengths, max_new, margins):
        """Greedy: words outside, characters inside (stop a row at its first pad, the word when
        all rows have), growing KV cache for the LM."""
        b, w, _ = words.shape
        g, cache = self.lm(self.pool(words, lengths))
        g = g[:, (w - 1) * self.p:]
        out_w, out_l = [], []
        for j in range(max_new):
            units = torch.zeros(b, self.canvas, dtype=torch.long)
            ended = torch.zeros(b, dtype=torch.bool)
            for i in range(self.canvas):
                logits = self.decode_chars(g, units)[:, i]
                top = logits.topk(2, dim=-1).values
                margins.append((top[:, 0] - top[:, 1])[~ended].min().item() if (~ended).any() else math.inf)
                u = torch.where(ended, 0, logits.argmax(-1))
                units[:, i] = u
                ended = ended | (u == 0)
                if ended.all():
                    break
            n_units = (units != 0).sum(-1)
            x = self.encode_words(units, n_units)
            g, cache = self.lm(x, (w + j) * self.p, cache)
            out_w.append(units)
            out_l.append(n_units)
        return torch.stack(out_w, 1), torch.stack(out_l, 1)


def main():
    lines = [segment(t) for t in (HERE / "texts.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
    for line in lines:
        print(" | ".join(x.decode("utf-8") for x in line))
    torch.manual_seed(0)
    w = make_weights(0)
    m = WordPooledLM(w)
    out, margins = {}, []
    with torch.no_grad():
        words, lengths = to_canvas(lines, max(len(x) for x in lines))
        out["forward.words"], out["forward.lengths"] = words, lengths
        out["forward.logits"], out["forward.pooled"] = m.forward(words, lengths)
        # teacher forcing equals the per-word decoder: row w's logits are decode_chars of word w's
        # LM slots and word w + 1's units (checked through forward's parallel path here)
        gw, gl = to_canvas(lines, GEN_PROMPT_WORDS)
        out["generate.words"], out["generate.lengths"] = gw, gl
        nw, nl = m.generate(gw, gl, MAX_NEW, margins)
        out["generate.new_words"], out["generate.new_lengths"] = nw, nl
        # the cached generation equals recomputation: forward on prompt + generated words
        # reproduces every generated unit (argmax of the teacher-forced logits)
        allw, alll = torch.cat([gw, nw], 1), torch.cat([gl, nl], 1)
        logits, _ = m.forward(allw, alll)
        pred = logits.argmax(-1)[:, GEN_PROMPT_WORDS - 1:]
        for b in range(pred.shape[0]):
            for j in range(MAX_NEW):
                n = int(nl[b, j])
                assert torch.equal(pred[b, j, : n + (n < C0)], allw[b, GEN_PROMPT_WORDS + j, : n + (n < C0)]), (b, j)
    print(f"generated: {[[bytes(r[:n].tolist()) for r, n in zip(nw[b], nl[b])] for b in range(nw.shape[0])]}")
    print(f"smallest greedy margin {min(margins):.3e}")
    assert min(margins) > 1e-3, "a decision is too close to call: change the seed"
    save_file({k: v.contiguous().numpy() for k, v in out.items()}, str(HERE / "golden.safetensors"))
    save_file({k: v.contiguous().numpy().astype(np.float32) for k, v in w.items()},
              str(HERE / "golden_weights.safetensors"))


if __name__ == "__main__":
    main()
