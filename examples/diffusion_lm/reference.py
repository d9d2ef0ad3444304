"""Golden files for the masked diffusion LM example (MDLM / LLaDA style), from an independent
PyTorch implementation of `model.dsl`: a LLaDA denoiser (LLaMA blocks without the causal mask),
LLaDA's `generate` with low-confidence remasking (greedy, and Gumbel at temperature 1 in two
semi-autoregressive blocks), MDLM's `ddpm_cache` ancestral sampler, and MDLM's NELBO.

Needs PyTorch, numpy and safetensors (never needed by the tests):

    python3 examples/diffusion_lm/reference.py

Writes beside this file (about 145 KB together):

  weights.safetensors   the parameters under the DSL's names (`embed.weight`,
                        `blocks.0.attn_norm.weight`, `blocks.0.attn.q_proj.weight`,
                        `blocks.0.mlp.gate_proj.weight`, `norm.weight`, `lm_head.weight`, ...),
                        drawn with `torch.manual_seed(0)`; no training.
  inputs.safetensors    `tokens` i64 [2, 16] for `denoise` (some [M]), `prompt` i64 [3, 4] and
                        `seed` i64 [] for the samplers, `x0` i64 [3, 16] and `elbo_seed` for `elbo`.
  golden.safetensors    expected outputs named `<run>.<output>`:
                        `denoise.logits` (+ intermediates `denoise.h0`, `denoise.h1`: the residual
                        stream after each block), `greedy.*` (`sample` with the defaults:
                        temperature 0, one block of 12), `gumbel.*` (`sample` with
                        `--set temperature=1.0 --set block_len=6`: two blocks of 4 steps),
                        each with `tokens`, `committed`, `history` and the intermediate
                        `confidence` [S, B, L] (softmax(z)[x̂_0], −inf where not eligible);
                        `mdlm.tokens` (`sample_mdlm`); `elbo.nelbo`, `elbo.loss`, `elbo.t`,
                        `elbo.masked` (`elbo`, 4 draws).

Randomness. Philox-4x32-10 and mlc's uniform mapping (kernels/src/philox.rs) are reimplemented in
numpy below and checked against that file's known-answer vectors; every random draw uses the
same stream offsets as model.dsl, so the golden tokens are exactly the ones mlc must produce.
The Gumbel/exponential noise is applied in float64 as LLaDA and MDLM do (mlc computes in f32);
the script asserts that every discrete decision (argmax, top-k boundary, mask draw) is won by a
margin far above that difference, so the goldens do not depend on rounding.
"""

import math
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
from philox import check_philox, philox_uniform  # noqa: E402


# ---------------------------------------------------------------- the model
# ---------------------------------------------------------------- the denoiser (LLaDA)

V, D_MODEL, LAYERS, HEADS = 32, 32, 2, 4
MASK_ID = V - 1
FFN = 3 * D_MODEL
NORM_EPS, ROPE_BASE = 1e-6, 10000.0
GEN_LEN, STEPS = 12, 8
MDLM_EPS, NOISE_EPS, ELBO_SAMPLES = 1e-5, 1e-3, 4
LOGIT_SCALE = 4.0


class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = torch.nn.Parameter(1.0 + 0.1 * torch.randn(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * self.weight


def rope(x, pos):
    """HF LLaMA rotate-half RoPE. x: [B, H, T, dh]."""
    dh = x.shape[-1]
    inv_freq = 1.0 / (ROPE_BASE ** (torch.arange(0, dh, 2, dtype=torch.float32) / dh))
    freqs = pos.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
    return x * emb.cos() + torch.cat([-x2, x1], dim=-1) * emb.sin()


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn_norm = RMSNorm(D_MODEL)
        self.attn = torch.nn.ModuleDict({n: torch.nn.Linear(D_MODEL, D_MODEL, bias=False)
                                         for n in ["q_proj", "k_proj", "v_proj", "o_proj"]})
        self.ffn_norm = RMSNorm(D_MODEL)
        self.mlp = torch.nn.ModuleDict({"gate_proj": torch.nn.Linear(D_MODEL, FFN, bias=False),
                                        "up_proj": torch.nn.Linear(D_MODEL, FFN, bias=False),
                                        "down_proj": torch.nn.Linear(FFN, D_MODEL, bias=False)})

    def forward(self, x, pos):
        b, n, _ = x.shape
        h = self.attn_norm(x)
        q, k, v = (self.attn[p](h).view(b, n, HEADS, -1).transpose(1, 2) for p in ["q_proj", "k_proj", "v_proj"])
        a = F.scaled_dot_product_attention(rope(q, pos), rope(k, pos), v)  # no mask: bidirectional
        x = x + self.attn["o_proj"](a.transpose(1, 2).reshape(b, n, D_MODEL))
        h = self.ffn_norm(x)
        return x + self.mlp["down_proj"](F.silu(self.mlp["gate_proj"](h)) * self.mlp["up_proj"](h))


class Denoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, D_MODEL)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(LAYERS)])
        self.norm = RMSNorm(D_MODEL)
        self.lm_head = torch.nn.Linear(D_MODEL, V, bias=False)
        with torch.no_grad():  # sharper than the default init, so that confidences differ clearly
            self.lm_head.weight.mul_(LOGIT_SCALE)

    def forward(self, x, trace=None):
        pos = torch.arange(x.shape[1])
        h = self.embed(x)
        for i, blk in enumerate(self.blocks):
            h = blk(h, pos)
            if trace is not None:
                trace[f"h{i}"] = h
        return self.lm_head(self.norm(h))


def no_mask_logits(m, x):
    z = m(x)
    z[..., MASK_ID] = -math.inf
    return z


# ---------------------------------------------------------------- LLaDA generate, low confidence

def num_transfer_tokens(block_len, block_steps):
    """LLaDA's get_num_transfer_tokens for a fully masked block: an even split, remainder first."""
    base, rem = divmod(block_len, block_steps)
    return [base + (1 if s < rem else 0) for s in range(block_steps)]


def llada_generate(m, prompt, seed, block_len, temperature):
    b, p = prompt.shape
    x = torch.cat([prompt, torch.full((b, GEN_LEN), MASK_ID)], dim=1)
    n_blocks = GEN_LEN // block_len
    block_steps = STEPS // n_blocks
    committed, history, confidence, margins = [], [], [], []
    for nb in range(n_blocks):
        ks = num_transfer_tokens(block_len, block_steps)
        for s in range(block_steps):
            mask_index = x == MASK_ID
            z = no_mask_logits(m, x).double()
            if temperature == 0.0:
                score = z
            else:  # LLaDA's add_gumbel_noise, float64: exp(z) / (-log u)^τ, argmax in the log domain
                u = philox_uniform(seed, nb * block_steps + s + 1, list(z.shape)).astype(np.float64)
                u = torch.from_numpy(np.maximum(u, 1e-10))
                score = z - temperature * torch.log(-torch.log(u))
                assert torch.equal(score.argmax(-1), (z.exp() / (-torch.log(u)) ** temperature).argmax(-1))
            x0 = score.argmax(-1)
            top2 = score.topk(2, dim=-1).values
            margins.append((top2[..., 0] - top2[..., 1])[mask_index].min().item())
            x0_p = torch.gather(F.softmax(z, dim=-1), -1, x0[..., None])[..., 0]
            x0_p[:, p + (nb + 1) * block_len:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, x0_p, torch.tensor(-math.inf, dtype=torch.float64))
            transfer = torch.zeros_like(x, dtype=torch.bool)
            for j in range(b):
                srt = conf[j].sort(descending=True).values
                k = ks[s]
                margins.append((srt[k - 1] - srt[k]).item() / srt[k - 1].item())  # the top-k boundary
                _, idx = torch.topk(conf[j], k=k)
                transfer[j, idx] = True
            x = torch.where(transfer, x0, x)
            committed.append(transfer.sum(1))
            history.append(x.clone())
            confidence.append(conf.float())
    assert min(margins) > 1e-4, f"a decision is too close to call: {min(margins)}"
    return {"tokens": x, "committed": torch.stack(committed), "history": torch.stack(history),
            "confidence": torch.stack(confidence)}


# ---------------------------------------------------------------- MDLM

def subs_log_probs(m, x):
    """MDLM's SUBS parameterisation: [M] gets -inf, log-softmax, unmasked positions a one-hot."""
    lp = F.log_softmax(no_mask_logits(m, x), dim=-1)
    keep = torch.full_like(lp, -math.inf).scatter(-1, x[..., None], 0.0)
    return torch.where((x == MASK_ID)[..., None], lp, keep)


def mdlm_sample(m, prompt, seed):
    """MDLM `_sample` with `ddpm_cache`: timesteps linspace(1, eps, S + 1), log-linear noise."""
    b, p = prompt.shape
    x = torch.cat([prompt, torch.full((b, GEN_LEN), MASK_ID)], dim=1)
    timesteps = torch.linspace(1, MDLM_EPS, STEPS + 1, dtype=torch.float64)
    dt = (1 - MDLM_EPS) / STEPS
    margins = []
    for i in range(STEPS):
        t = timesteps[i].item()
        move_t, move_s = (1 - NOISE_EPS) * t, (1 - NOISE_EPS) * (t - dt)
        p_x0 = subs_log_probs(m, x).double().exp()
        q = p_x0 * (move_t - move_s)
        q[:, :, MASK_ID] = move_s
        u = torch.from_numpy(philox_uniform(seed, i + 1, list(q.shape)).astype(np.float64))
        score = q / (1e-10 - torch.log(u + 1e-10))  # _sample_categorical
        draw = score.argmax(-1)
        top2 = score.topk(2, dim=-1).values
        rel = (top2[..., 0] - top2[..., 1]) / top2[..., 0]
        margins.append(rel[x == MASK_ID].min().item())
        x = torch.where(x != MASK_ID, x, draw)  # copy_flag: unmasked tokens are kept
    lp = subs_log_probs(m, x)
    top2 = lp.topk(2, dim=-1).values
    still = x == MASK_ID
    if still.any():
        margins.append((top2[..., 0] - top2[..., 1])[still].min().item())
    assert min(margins) > 1e-4, f"a decision is too close to call: {min(margins)}"
    return {"tokens": torch.where(still, lp.argmax(-1), x)}


def mdlm_nelbo(m, x0, seed):
    """MDLM `_forward_pass_diffusion` (SUBS, log-linear noise, continuous time), n draws per row."""
    n, (b, L) = ELBO_SAMPLES, x0.shape
    u = torch.from_numpy(philox_uniform(seed, 0, [n, b]))
    # _sample_t, stratified over the n draws of each row: ((u + i) / n) in f32 as model.dsl writes it
    s = (u + torch.arange(n, dtype=torch.float32)[:, None]) / np.float32(n)
    t = s * np.float32(1 - NOISE_EPS) + np.float32(NOISE_EPS)
    sigma = -torch.log1p(-(1 - NOISE_EPS) * t.double())                   # log-linear total noise
    dsigma = (1 - NOISE_EPS) / (1 - (1 - NOISE_EPS) * t.double())
    move_chance = 1 - torch.exp(-sigma)                                     # = (1 - eps) t
    uu = torch.from_numpy(philox_uniform(seed, 1, [n, b, L]).astype(np.float64))
    masked = uu < move_chance[:, :, None]
    gap = (uu - move_chance[:, :, None]).abs().min().item()
    assert gap > 1e-6, f"a mask draw is too close to call: {gap}"
    xt = torch.where(masked, MASK_ID, x0[None].expand(n, b, L)).reshape(n * b, L)
    lp = subs_log_probs(m, xt).double()
    log_p_theta = torch.gather(lp, -1, x0[None].expand(n, b, L).reshape(n * b, L, 1))[..., 0].view(n, b, L)
    loss = (-log_p_theta * (dsigma / torch.expm1(sigma))[:, :, None]).sum(-1)   # weight = 1 / t
    return {"nelbo": loss.mean(0).float(), "loss": loss.float(), "t": t, "masked": masked}


def main():
    check_philox()
    torch.manual_seed(0)
    m = Denoiser().eval()
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (2, GEN_LEN + 4), generator=g)
    tokens[:, 5:9] = MASK_ID
    prompt = torch.randint(0, V - 1, (3, 4), generator=g)
    x0 = torch.randint(0, V - 1, (3, GEN_LEN + 4), generator=g)
    seed, elbo_seed = 42, 7
    golden = {}
    with torch.no_grad():
        trace = {}
        golden["denoise.logits"] = m(tokens, trace)
        for k, v in trace.items():
            golden[f"denoise.{k}"] = v
        for name, block_len, temp in [("greedy", GEN_LEN, 0.0), ("gumbel", 6, 1.0)]:
            for k, v in llada_generate(m, prompt, seed, block_len, temp).items():
                golden[f"{name}.{k}"] = v
        golden["mdlm.tokens"] = mdlm_sample(m, prompt, seed)["tokens"]
        for k, v in mdlm_nelbo(m, x0, elbo_seed).items():
            golden[f"elbo.{k}"] = v

    def np_(t):
        t = t.detach()
        dt = np.float32 if t.is_floating_point() else (np.bool_ if t.dtype == torch.bool else np.int64)
        return np.array(t.numpy(), dtype=dt, order="C")

    save_file({k: np_(v) for k, v in m.state_dict().items()}, str(HERE / "weights.safetensors"))
    save_file({"tokens": np_(tokens), "prompt": np_(prompt), "seed": np.array(seed, dtype=np.int64),
               "x0": np_(x0), "elbo_seed": np.array(elbo_seed, dtype=np.int64)},
              str(HERE / "inputs.safetensors"))
    save_file({k: np_(v) for k, v in golden.items()}, str(HERE / "golden.safetensors"))
    for k, v in golden.items():
        print(f"{k}: {v.dtype} {list(v.shape)}")
    for k in ["greedy.tokens", "gumbel.tokens", "mdlm.tokens", "greedy.committed", "gumbel.committed", "elbo.nelbo"]:
        print(k, golden[k].numpy().tolist())


if __name__ == "__main__":
    main()
