"""Golden files for the SharedLLM example, from an independent PyTorch implementation of
`model.dsl`: a LLaMA decoder (RMSNorm, rotate-half RoPE with explicit position ids, grouped-query
attention, SwiGLU) used twice, as in `Clement25/SharedLLM`: the lower model (the first M layers,
the same tensors) compresses context chunks through the height-3 context tree ("always right" or
query-aware policy) with strided KV and chunk-level RoPE; the upper model self-injects the
compressed KV in layers 1..M and decodes greedily with a KV cache.

Needs PyTorch, numpy and safetensors (transformers optionally, for a cross-check of the plain
LLaMA path); the tests never run Python:

    python3 examples/sharedllm/reference.py

Writes beside this file (about 1.9 MB together), for two configurations (`<cfg>` = `base`:
model.dsl's defaults; `gqa`: `--set kv_heads=2 --set tie_embeddings=true --set
query_chunk_offset=1 --set n_layers=3 --set M=2`, batch 1, three chunks, prompt 12):

  golden_<cfg>_weights.safetensors  the parameters under the DSL's names (`embed_tokens.weight`,
                        `layers.0.self_attn.q_proj.weight`, `layers.0.mlp.gate_proj.weight`,
                        `cross_attn.0.q_proj.weight`, `norm.weight`, `lm_head.weight`, ...),
                        drawn with `torch.manual_seed`; no training.
  golden_<cfg>.safetensors  inputs `context` i64 [B, n, Lc], `tokens` i64 [B, T] (also the prompt
                        of `generate` and the query of the query-aware policy), and the expected
                        outputs `encode_context.k/.v` [M, B, Hkv, n*Lc/8, dh],
                        `encode_context_query_aware.k/.v`, `forward.logits` ("always right"),
                        `forward_qa.logits` (query-aware), `vanilla.logits` [B, T, vocab],
                        `generate.tokens` / `generate_qa.tokens` i64 [B, max_new]; intermediates
                        `qa.choice1`, `qa.choice2` i64 [B*n] (0 = the left half was expanded),
                        `vanilla.k/.v` [N, B, Hkv, T, dh] (the plain model's per-layer keys and
                        values).

Every discrete decision (the greedy argmax of each generated token, the query-aware argmax over
the two halves' cosines) is checked to be won by a margin far above f32 rounding, so the golden
tokens and choices do not depend on the summation order.
"""

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    vocab: int = 256
    d: int = 64
    heads: int = 4
    kv_heads: int = 4
    n_layers: int = 4
    M: int = 2
    ffn: int = 256
    rope_base: float = 10000.0
    eps: float = 1e-5
    tie: bool = False
    Lc: int = 64
    alphas: tuple = (16, 8, 4)
    q_offset: int = 0
    max_new: int = 8

    @property
    def dh(self):
        return self.d // self.heads

    @property
    def per_chunk(self):
        a1, a2, a3 = self.alphas
        return self.Lc // 2 // a1 + self.Lc // 4 // a2 + 2 * (self.Lc // 8 // a3)


# ---------------------------------------------------------------- weights


def make_weights(c: Config, seed: int) -> dict:
    """PyTorch-default-like random parameters under the DSL's names. Norm weights are 1 + noise so
    that they matter; embeddings N(0, 1)."""
    g = torch.Generator().manual_seed(seed)

    def lin(out, inp):
        b = 1.0 / math.sqrt(inp)
        return (torch.rand(out, inp, generator=g) * 2 - 1) * b

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    kvd = c.kv_heads * c.dh
    w = {"embed_tokens.weight": torch.randn(c.vocab, c.d, generator=g)}
    for j in range(c.n_layers):
        p = f"layers.{j}."
        w[p + "input_layernorm.weight"] = norm(c.d)
        w[p + "self_attn.q_proj.weight"] = lin(c.d, c.d)
        w[p + "self_attn.k_proj.weight"] = lin(kvd, c.d)
        w[p + "self_attn.v_proj.weight"] = lin(kvd, c.d)
        w[p + "self_attn.o_proj.weight"] = lin(c.d, c.d)
        w[p + "post_attention_layernorm.weight"] = norm(c.d)
        w[p + "mlp.gate_proj.weight"] = lin(c.ffn, c.d)
        w[p + "mlp.up_proj.weight"] = lin(c.ffn, c.d)
        w[p + "mlp.down_proj.weight"] = lin(c.d, c.ffn)
    for j in range(c.M):
        p = f"cross_attn.{j}."
        w[p + "norm.weight"] = norm(c.d)
        w[p + "q_proj.weight"] = lin(c.d, c.d)
        w[p + "o_proj.weight"] = lin(c.d, c.d)
    w["norm.weight"] = norm(c.d)
    if not c.tie:
        w["lm_head.weight"] = lin(c.vocab, c.d)
    return w


# ---------------------------------------------------------------- LLaMA pieces


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, base):
    """HF LLaMA's rotate-half RoPE. x [B, H, T, dh]; pos i64 [T]."""
    dh = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float32) / dh))
    freqs = pos.to(torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
    return x * emb.cos() + torch.cat([-x2, x1], dim=-1) * emb.sin()


def attend(q, k, v, mask=None):
    """q [B, H, Tq, dh]; k, v [B, Hkv, Tk, dh] (repeated for GQA); mask bool [Tq, Tk] or None."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def heads(x, h):
    b, t, _ = x.shape
    return x.view(b, t, h, -1).transpose(1, 2)


def unheads(x):
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class Llama:
    """The shared decoder. All methods take and return plain tensors."""

    def __init__(self, c: Config, w: dict):
        self.c, self.w = c, w

    def lin(self, name, x):
        return x @ self.w[name + ".weight"].T

    def qkv(self, j, x, pos):
        c, p = self.c, f"layers.{j}."
        h = rms_norm(x, self.w[p + "input_layernorm.weight"], c.eps)
        q = rope(heads(self.lin(p + "self_attn.q_proj", h), c.heads), pos, c.rope_base)
        k = rope(heads(self.lin(p + "self_attn.k_proj", h), c.kv_heads), pos, c.rope_base)
        v = heads(self.lin(p + "self_attn.v_proj", h), c.kv_heads)
        return q, k, v

    def self_attn(self, j, x, pos, past=None):
        """Causal self-attention half with its residual. x [B, n, d] at positions pos [n];
        past = (k, v) of the earlier positions or None. Returns (x', k_all, v_all)."""
        q, k, v = self.qkv(j, x, pos)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        tq, tk = q.shape[2], k.shape[2]
        causal = torch.arange(tk)[None, :] <= torch.arange(tq)[:, None] + (tk - tq)
        o = attend(q, k, v, causal)
        return x + self.lin(f"layers.{j}.self_attn.o_proj", unheads(o)), k, v

    def ffn(self, j, x):
        p = f"layers.{j}."
        h = rms_norm(x, self.w[p + "post_attention_layernorm.weight"], self.c.eps)
        g = self.lin(p + "mlp.gate_proj", h)
        return x + self.lin(p + "mlp.down_proj", F.silu(g) * self.lin(p + "mlp.up_proj", h))

    def inject(self, j, x, ck, cv, q_pos):
        """SharedLLM's cross-attention (self-injection) of upper layer j: no k/v projections,
        queries at chunk-level position q_pos, no mask."""
        c, p = self.c, f"cross_attn.{j}."
        h = rms_norm(x, self.w[p + "norm.weight"], c.eps)
        q = heads(self.lin(p + "q_proj", h), c.heads)
        q = rope(q, torch.full((x.shape[1],), q_pos, dtype=torch.long), c.rope_base)
        return x + self.lin(p + "o_proj", unheads(attend(q, ck, cv)))

    def head(self, x):
        h = rms_norm(x, self.w["norm.weight"], self.c.eps)
        return h @ (self.w["embed_tokens.weight"] if self.c.tie else self.w["lm_head.weight"]).T

    def embed(self, ids):
        return self.w["embed_tokens.weight"][ids]

    # ------------------------------------------------------------ plain model

    def vanilla(self, tokens, collect=False):
        """Plain LLaMA logits [B, T, V] (and the per-layer (k, v) when collect)."""
        pos = torch.arange(tokens.shape[1])
        x, kvs = self.embed(tokens), []
        for j in range(self.c.n_layers):
            x, k, v = self.self_attn(j, x, pos)
            kvs.append((k, v))
            x = self.ffn(j, x)
        return (self.head(x), kvs) if collect else self.head(x)

    # ------------------------------------------------------------ lower model: compression

    def lower_kv(self, ids, alpha):
        """One tree node through the M lower layers (positions 0..l-1), per-layer KV strided by
        alpha: lists over layers of [R, Hkv, l/alpha, dh]."""
        pos = torch.arange(ids.shape[1])
        x, ks, vs = self.embed(ids), [], []
        for j in range(self.c.M):
            x, k, v = self.self_attn(j, x, pos)
            x = self.ffn(j, x)
            ks.append(k[:, :, ::alpha])
            vs.append(v[:, :, ::alpha])
        return ks, vs

    def probe(self, ids):
        """Last-token state of a one-layer forward (layer 0) [R, d]."""
        x, _, _ = self.self_attn(0, self.embed(ids), torch.arange(ids.shape[1]))
        return self.ffn(0, x)[:, -1]

    def split(self, ids, h_y, record):
        """(chosen, preserved) halves of every row. h_y None: always right."""
        half = ids.shape[1] // 2
        left, right = ids[:, :half], ids[:, half:]
        if h_y is None:
            return right, left
        sl = F.cosine_similarity(h_y, self.probe(left), dim=-1, eps=1e-8)
        sr = F.cosine_similarity(h_y, self.probe(right), dim=-1, eps=1e-8)
        record.append(((sr > sl).long(), (sr - sl).abs().min().item()))
        pick_right = (sr > sl)[:, None]
        return torch.where(pick_right, right, left), torch.where(pick_right, left, right)

    def compress(self, context, query=None, record=None):
        """context [B, n, Lc]; query [B, T] or None. Returns (k, v), each a list over the M lower
        layers of [B, Hkv, n*per_chunk, dh], keys rotated by their chunk index."""
        c = self.c
        b, n, lc = context.shape
        ids = context.reshape(b * n, lc)
        h_y = None if query is None else self.probe(query).repeat_interleave(n, dim=0)
        record = [] if record is None else record
        chosen1, kept1 = self.split(ids, h_y, record)
        chosen2, kept2 = self.split(chosen1, h_y, record)
        eighth = lc // 8
        nodes = [(kept1, c.alphas[0]), (kept2, c.alphas[1]), (chosen2[:, :eighth], c.alphas[2]),
                 (chosen2[:, eighth:], c.alphas[2])]
        parts = [self.lower_kv(ids_, a) for ids_, a in nodes]
        chunk = torch.arange(n * c.per_chunk) // c.per_chunk
        ks, vs = [], []
        for j in range(c.M):
            k = torch.cat([p[0][j] for p in parts], dim=2)          # [b*n, Hkv, per_chunk, dh]
            v = torch.cat([p[1][j] for p in parts], dim=2)
            k = k.view(b, n, c.kv_heads, c.per_chunk, c.dh).transpose(1, 2).reshape(b, c.kv_heads, -1, c.dh)
            v = v.view(b, n, c.kv_heads, c.per_chunk, c.dh).transpose(1, 2).reshape(b, c.kv_heads, -1, c.dh)
            ks.append(rope(k, chunk, c.rope_base))
            vs.append(v)
        return ks, vs

    # ------------------------------------------------------------ upper model

    def upper(self, tokens, ck, cv, n_chunks, cache=None, start=0):
        """Upper model over tokens [B, t] at positions start..; cache: list of (k, v) per layer
        for positions < start, or None. Returns (logits [B, t, V], new cache)."""
        c = self.c
        pos = torch.arange(tokens.shape[1]) + start
        x, new = self.embed(tokens), []
        for j in range(c.n_layers):
            x, k, v = self.self_attn(j, x, pos, None if cache is None else cache[j])
            new.append((k, v))
            if j < c.M:
                x = self.inject(j, x, ck[j], cv[j], n_chunks + c.q_offset)
            x = self.ffn(j, x)
        return self.head(x), new

    def generate(self, context, prompt, query_aware, margins):
        """Greedy decoding with a KV cache: compress once, prefill, max_new steps."""
        ck, cv = self.compress(context, prompt if query_aware else None)
        n, t = context.shape[1], prompt.shape[1]
        logits, cache = self.upper(prompt, ck, cv, n)
        out, tok = [], pick(logits[:, -1], margins)
        for i in range(self.c.max_new):
            out.append(tok)
            logits, cache = self.upper(tok[:, None], ck, cv, n, cache, t + i)
            tok = pick(logits[:, -1], margins)
        return torch.stack(out, dim=1)


def pick(logits, margins):
    """Greedy argmax [B], recording the gap between the best and second-best logit."""
    top = logits.topk(2, dim=-1).values
    margins.append((top[:, 0] - top[:, 1]).min().item())
    return logits.argmax(-1)


def check_against_transformers(c: Config, w: dict, tokens):
    """The plain path against transformers' LlamaForCausalLM with the same tensors (optional)."""
    try:
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        return None
    hc = LlamaConfig(vocab_size=c.vocab, hidden_size=c.d, intermediate_size=c.ffn, num_hidden_layers=c.n_layers,
                     num_attention_heads=c.heads, num_key_value_heads=c.kv_heads, rms_norm_eps=c.eps,
                     rope_theta=c.rope_base, tie_word_embeddings=c.tie, max_position_embeddings=512)
    m = LlamaForCausalLM(hc).eval()
    sd = {("lm_head.weight" if k == "lm_head.weight" else "model." + k): v for k, v in w.items()
          if k.startswith(("embed_tokens", "layers", "norm", "lm_head"))}
    if c.tie:
        sd["lm_head.weight"] = w["embed_tokens.weight"]
    m.load_state_dict(sd, strict=True)
    with torch.no_grad():
        return m(tokens).logits


def build(name: str, c: Config, seed: int, b: int, n: int, t: int):
    torch.manual_seed(seed)
    w = make_weights(c, seed)
    llm = Llama(c, w)
    g = torch.Generator().manual_seed(seed + 100)
    context = torch.randint(0, c.vocab, (b, n, c.Lc), generator=g)
    tokens = torch.randint(0, c.vocab, (b, t), generator=g)
    out, margins, record = {}, [], []
    with torch.no_grad():
        for key, q in [("encode_context", None), ("encode_context_query_aware", tokens)]:
            ks, vs = llm.compress(context, q, record if q is not None else None)
            out[key + ".k"], out[key + ".v"] = torch.stack(ks), torch.stack(vs)
        out["qa.choice1"], out["qa.choice2"] = record[0][0], record[1][0]
        qa_margin = min(r[1] for r in record)
        for key, q in [("forward", None), ("forward_qa", tokens)]:
            ck, cv = llm.compress(context, q)
            out[key + ".logits"], _ = llm.upper(tokens, ck, cv, n)
        logits, kvs = llm.vanilla(tokens, collect=True)
        out["vanilla.logits"] = logits
        out["vanilla.k"] = torch.stack([k for k, _ in kvs])
        out["vanilla.v"] = torch.stack([v for _, v in kvs])
        hf = check_against_transformers(c, w, tokens)
        if hf is not None:
            err = (hf - logits).abs().max().item()
            print(f"{name}: plain LLaMA vs transformers LlamaForCausalLM: max |diff| {err:.2e}")
            assert err < 1e-4, err
        out["generate.tokens"] = llm.generate(context, tokens, False, margins)
        out["generate_qa.tokens"] = llm.generate(context, tokens, True, margins)
        # the cached generation equals the argmax of a full recomputation at every step (the
        # query-aware policy keeps the prompt as its query, as `generate` does)
        for key, qa in [("generate", False), ("generate_qa", True)]:
            toks = out[key + ".tokens"]
            for i in range(c.max_new):
                full = torch.cat([tokens, toks[:, :i]], dim=1)
                ck, cv = llm.compress(context, tokens if qa else None)
                lg, _ = llm.upper(full, ck, cv, n)
                assert torch.equal(lg[:, -1].argmax(-1), toks[:, i]), (key, i)
    print(f"{name}: smallest greedy margin {min(margins):.3e}, query-aware cosine margin {qa_margin:.3e}, "
          f"choices {out['qa.choice1'].tolist()} {out['qa.choice2'].tolist()}")
    assert min(margins) > 1e-3 and qa_margin > 1e-4, "a decision is too close to call: change the seed"
    golden = {"context": context, "tokens": tokens, **out}
    save_file({k: v.contiguous().numpy() for k, v in golden.items()}, str(HERE / f"golden_{name}.safetensors"))
    save_file({k: v.contiguous().numpy().astype(np.float32) for k, v in w.items()},
              str(HERE / f"golden_{name}_weights.safetensors"))


BASE = Config()
GQA = replace(BASE, kv_heads=2, tie=True, q_offset=1, n_layers=3, M=2)


def main():
    build("base", BASE, seed=0, b=2, n=2, t=32)
    build("gqa", GQA, seed=1, b=1, n=3, t=12)


if __name__ == "__main__":
    main()
