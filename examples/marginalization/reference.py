"""Golden files for the Generative Marginalization Model (MaM) example, from an independent
PyTorch implementation of `model.dsl` (trunk, marginal head θ, conditional head φ, the
self-consistency terms, and any-order sampling with mlc's Philox-4x32-10 random stream).

Needs PyTorch, numpy and safetensors (never needed by the tests):

    python3 examples/marginalization/reference.py

Writes beside this file (about 210 KB together):

  weights.safetensors   the parameters under the DSL's names (`embed.weight`,
                        `blocks.0.attn.q_proj.weight`, `marg1.weight`, `cond3.bias`, ...), drawn
                        with `torch.manual_seed(0)` (no training: MaM's inference contract does
                        not depend on the values).
  inputs.safetensors    the entry points' inputs: `x` i64 [6, D] for `log_marginal` and
                        `conditional` (one all-"?" row, so log p = 0 there), `sc_x` / `sc_pos`
                        for `self_consistency`, `sample_x` i64 [4, D] and `seed` i64 [] for
                        `sample` (two all-"?" rows, two partially observed rows: infill).
  golden.safetensors    the expected outputs, named `<entry>.<output>`, plus intermediates:
                        `trunk` (Y = the trunk's output for `x`), `f_theta` (unnormalised
                        marginals of `x`), `sample.u` (the order noise), `sample.steps_logp`
                        [D, B, K] (the conditional read at each step), `sample.states`
                        [D, B, D] (x after each step).

Randomness. `sample` draws σ by sorting Philox uniforms and the values by Gumbel-max; this file
reimplements Philox-4x32-10 and mlc's uniform mapping (kernels/src/philox.rs) in numpy, checks
them against that file's known-answer vectors, and uses the same uniforms, so the golden samples
are the ones mlc must produce bit for bit. The Gumbel noise is computed in float64 here (mlc: f32);
the script asserts that every Gumbel-max decision wins by a margin far above that difference.
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

# The configuration of model.dsl's defaults (the CPU test configuration).
D, K, DM, LAYERS, HEADS = 8, 4, 32, 2, 4
MLP, MARG_HIDDEN = 4 * DM, 4 * DM
UNKNOWN = K  # the "?" id
LN_EPS = 1e-5

# ---------------------------------------------------------------- Philox-4x32-10 (numpy)

# Shared by the examples' reference scripts (examples/philox.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from philox import check_philox, philox_uniform  # noqa: E402


# ---------------------------------------------------------------- the model

class Block(torch.nn.Module):
    """Pre-LN encoder block: x += MHA(LN(x)) (no mask, biases); x += fc2(gelu(fc1(LN(x))))."""

    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(DM, eps=LN_EPS)
        self.attn = torch.nn.ModuleDict({n: torch.nn.Linear(DM, DM) for n in ["q_proj", "k_proj", "v_proj", "o_proj"]})
        self.ln2 = torch.nn.LayerNorm(DM, eps=LN_EPS)
        self.mlp = torch.nn.ModuleDict({"fc1": torch.nn.Linear(DM, MLP), "fc2": torch.nn.Linear(MLP, DM)})

    def forward(self, x):
        h = self.ln1(x)
        b, n, _ = h.shape
        q, k, v = (self.attn[p](h).view(b, n, HEADS, DM // HEADS).transpose(1, 2) for p in ["q_proj", "k_proj", "v_proj"])
        a = F.scaled_dot_product_attention(q, k, v)  # bidirectional
        x = x + self.attn["o_proj"](a.transpose(1, 2).reshape(b, n, DM))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.ln2(x))))


def sinusoidal(n, d):
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(d // 2, dtype=torch.float64)[None, :]
    a = pos / torch.pow(10000.0, 2 * i / d)
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(a), torch.cos(a)
    return pe.float()


class MaM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(K + 1, DM)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_f = torch.nn.LayerNorm(DM, eps=LN_EPS)
        self.marg1, self.marg2, self.marg3 = torch.nn.Linear(DM, MARG_HIDDEN), torch.nn.Linear(MARG_HIDDEN, MARG_HIDDEN), torch.nn.Linear(MARG_HIDDEN, 1)
        self.cond1, self.cond2, self.cond3 = torch.nn.Linear(DM, DM), torch.nn.Linear(DM, DM), torch.nn.Linear(DM, K)
        self.register_buffer("pe", sinusoidal(D, DM), persistent=False)
        with torch.no_grad():  # LayerNorm affine parameters away from (1, 0), so they are tested
            for m in self.modules():
                if isinstance(m, torch.nn.LayerNorm):
                    m.weight.add_(0.1 * torch.randn(DM))
                    m.bias.add_(0.1 * torch.randn(DM))

    def trunk(self, x):
        h = self.embed(x) + self.pe[None]
        for blk in self.blocks:
            h = blk(h)
        return self.ln_f(h)

    def f_theta(self, y):  # log p~(x_s): [R]
        return self.marg3(F.gelu(self.marg2(F.gelu(self.marg1(y.mean(dim=1))))))[:, 0]

    def cond_logp(self, y):  # log p_phi(x_i = k | x_s): [R, D, K]
        return F.log_softmax(self.cond3(F.gelu(self.cond2(F.gelu(self.cond1(y))))), dim=-1)

    def log_z(self):
        return self.f_theta(self.trunk(torch.full((1, D), UNKNOWN)))[0]


# ---------------------------------------------------------------- the entry points

def log_marginal(m, x):
    lz = m.log_z()
    return {"log_p": m.f_theta(m.trunk(x)) - lz, "log_z": lz}


def conditional(m, x):
    lp = m.cond_logp(m.trunk(x))
    delta = torch.full_like(lp, -math.inf)
    obs = x != UNKNOWN
    delta[obs] = torch.where(F.one_hot(x[obs].clamp(max=K - 1), K).bool(), 0.0, -math.inf)
    return {"logp": torch.where((x == UNKNOWN)[:, :, None], lp, delta)}


def self_consistency(m, x, pos):
    b = x.shape[0]
    xs = x.clone()
    xs[torch.arange(b), pos] = UNKNOWN
    lz = m.log_z()
    y = m.trunk(xs)
    lp = m.f_theta(y) - lz
    xk = xs[:, None, :].repeat(1, K, 1)
    xk[torch.arange(b)[:, None], torch.arange(K)[None, :], pos[:, None]] = torch.arange(K)[None, :]
    lpk = (m.f_theta(m.trunk(xk.reshape(b * K, D))) - lz).view(b, K)
    cond = m.cond_logp(y)[torch.arange(b), pos]
    lsum = torch.logsumexp(lpk, dim=-1)
    return {"log_p": lp, "log_p_sum": lsum, "log_p_next": lpk, "cond_logp": cond,
            "gap": lsum - lp, "err": lp[:, None] + cond - lpk}


def sample(m, x, seed):
    """Any-order sampling: σ = argsort of Philox uniforms (offset 0, descending, ties to the lower
    index) with observed positions last; step t draws x_σ(t) from p_phi by Gumbel-max with the
    uniforms of offset t + 1 (clamped to 2^-24), writing only positions that are still "?"."""
    b = x.shape[0]
    u = philox_uniform(seed, 0, [b, D])
    key = np.where(x.numpy() == UNKNOWN, u, u - np.float32(1.0))
    order = np.argsort(-key, axis=1, kind="stable")  # descending, ties to the lower index
    xs = x.clone()
    logp = torch.zeros(b)
    steps_logp, states, margins = [], [], []
    for t in range(D):
        p = torch.from_numpy(order[:, t])
        lp_p = m.cond_logp(m.trunk(xs))[torch.arange(b), p]  # [B, K]
        uu = np.maximum(philox_uniform(seed, t + 1, [b, K]).astype(np.float64), 2.0 ** -24)
        score = lp_p.double().numpy() - np.log(-np.log(uu))
        v = torch.from_numpy(score.argmax(axis=1))
        srt = np.sort(score, axis=1)
        margins.append(srt[:, -1] - srt[:, -2])
        old = xs[torch.arange(b), p]
        free = old == UNKNOWN
        xs[torch.arange(b), p] = torch.where(free, v, old)
        logp = logp + torch.where(free, lp_p[torch.arange(b), v], torch.zeros(()))
        steps_logp.append(lp_p)
        states.append(xs.clone())
    assert min(x.min() for x in margins) > 1e-3, "a Gumbel-max decision is too close to call"
    return ({"samples": xs, "order": torch.from_numpy(order), "logp": logp},
            {"u": torch.from_numpy(u), "steps_logp": torch.stack(steps_logp), "states": torch.stack(states)})


def main():
    check_philox()
    torch.manual_seed(0)
    m = MaM().eval()
    q = UNKNOWN
    x = torch.tensor([
        [q] * D,                         # all "?": log p = 0
        [0, 1, 2, 3, 0, 1, 2, 3],        # fully observed
        [3, q, q, 1, q, 0, q, 2],
        [q, q, q, q, q, q, q, 2],
        [1, 1, q, q, 2, 2, q, q],
        [2, 0, 3, 1, q, 3, 0, 1],
    ])
    sc_x = torch.tensor([
        [q] * D,
        [0, 1, 2, 3, 0, 1, 2, 3],
        [3, q, q, 1, q, 0, q, 2],
        [1, 1, q, q, 2, 2, q, q],
    ])
    sc_pos = torch.tensor([0, 5, 1, 7])
    sample_x = torch.tensor([
        [q] * D,
        [q] * D,
        [2, q, q, 0, q, q, 1, q],
        [q, 3, 3, 3, q, q, q, 0],
    ])
    seed = 1234
    golden = {}
    with torch.no_grad():
        y = m.trunk(x)
        golden["trunk"] = y
        golden["f_theta"] = m.f_theta(y)
        for name, fn, args in [("log_marginal", log_marginal, (x,)), ("conditional", conditional, (x,)),
                               ("self_consistency", self_consistency, (sc_x, sc_pos))]:
            for k, v in fn(m, *args).items():
                golden[f"{name}.{k}"] = v
        out, inter = sample(m, sample_x, seed)
        for k, v in list(out.items()) + list(inter.items()):
            golden[f"sample.{k}"] = v
        # A second seed, to show the sample depends on it.
        out2, _ = sample(m, sample_x, seed + 1)
        golden["sample_seed2.samples"] = out2["samples"]
        golden["sample_seed2.order"] = out2["order"]
        golden["sample_seed2.logp"] = out2["logp"]

    # Checks of the reference itself.
    assert abs(golden["log_marginal.log_p"][0].item()) < 1e-6  # f(?...?) = log Z
    sc = golden
    print("self-consistency gap |logsumexp_k log p(x_s, x_i=k) - log p(x_s)|:",
          sc["self_consistency.gap"].abs().numpy())
    print("paper's one-step error, mean square:", (sc["self_consistency.err"] ** 2).mean().item())

    def np_(t):
        t = t.detach()
        return np.array(t.numpy(), dtype=np.int64 if not t.is_floating_point() else np.float32, order="C")

    weights = {k: np_(v) for k, v in m.state_dict().items()}
    inputs = {"x": np_(x), "sc_x": np_(sc_x), "sc_pos": np_(sc_pos), "sample_x": np_(sample_x),
              "seed": np.array(seed, dtype=np.int64)}
    save_file(weights, str(HERE / "weights.safetensors"))
    save_file(inputs, str(HERE / "inputs.safetensors"))
    save_file({k: np_(v) for k, v in golden.items()}, str(HERE / "golden.safetensors"))
    for k, v in golden.items():
        print(f"{k}: {list(v.shape)}")
    print("samples:\n", golden["sample.samples"].numpy(), "\norder:\n", golden["sample.order"].numpy())


if __name__ == "__main__":
    main()
