#!/usr/bin/env python3
"""PyTorch reference of examples/ptrnet/model.dsl (Pointer Networks, Vinyals et al. 2015).

An independent implementation of the same model and inference loops, written against
torch.nn.LSTMCell with the DSL's parameter names (encoder.weight_ih, ..., w1.weight, v, go, eos):

    python3 examples/ptrnet/reference.py --train   # trains weights_tsp / weights_hull (minutes, CPU)
    python3 examples/ptrnet/reference.py           # writes golden.safetensors and eval.safetensors

Files (all under examples/ptrnet/):
  weights_tsp.safetensors    hidden 128, trained on TSP, n = 5..10 (exact tours by Held-Karp)
  weights_hull.safetensors   hidden 128, trained on convex hull, n = 5..10 (monotone chain)
  weights_random.safetensors hidden 32 (the DSL default), seeded uniform(-0.08, 0.08)
  golden.safetensors         inputs and expected outputs of every entry (see `write_goldens`)
  eval.safetensors           1,000 fresh instances per task, their exact solutions and PyTorch's
                             greedy / beam / hull outputs and accuracy figures

The goldens are computed in float64 from the float32 weights and inputs, and stored as float32.
"""

import argparse
import itertools
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
NEG_INF = float("-inf")


# ---------------------------------------------------------------- the model


class PointerNet(nn.Module):
    """Parameter names match the DSL's dotted paths."""

    def __init__(self, hidden=128, coords=2, init_scale=0.08):
        super().__init__()
        self.hidden = hidden
        self.encoder = nn.LSTMCell(coords, hidden)  # gates i, f, g, o like std.nn.LSTMCell
        self.decoder = nn.LSTMCell(coords, hidden)
        self.w1 = nn.Linear(hidden, hidden, bias=False)
        self.w2 = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Parameter(torch.empty(hidden))
        self.go = nn.Parameter(torch.empty(coords))
        self.eos = nn.Parameter(torch.empty(coords))
        for p in self.parameters():  # the paper: uniform(-0.08, 0.08) everywhere
            nn.init.uniform_(p, -init_scale, init_scale)

    # -- building blocks, one per DSL function

    def encode(self, x):
        """x [B, N, C] -> E [B, N, H], h_N, c_N."""
        b, n, _ = x.shape
        h = x.new_zeros(b, self.hidden)
        c = x.new_zeros(b, self.hidden)
        states = []
        for j in range(n):
            h, c = self.encoder(x[:, j], (h, c))
            states.append(h)
        return torch.stack(states, 1), h, c

    def pointer_scores(self, w1e, d):
        """u_j = v^T tanh(W1 e_j + W2 d): w1e [R, N, H], d [R, H] -> [R, N]."""
        return torch.tanh(w1e + self.w2(d)[:, None, :]) @ self.v

    def step(self, w1e, x, h, c, visited):
        h2, c2 = self.decoder(x, (h, c))
        u = self.pointer_scores(w1e, h2).masked_fill(visited, NEG_INF)
        return torch.log_softmax(u, -1), h2, c2

    def go_rows(self, r, like):
        return self.go.to(like.dtype)[None, :].expand(r, -1)

    @staticmethod
    def pick(x, j):
        """x [R, N, F], j [R] -> x[r, j[r]] [R, F]."""
        return x[torch.arange(x.shape[0]), j]

    # -- entry points

    def greedy(self, points):
        b, n, _ = points.shape
        e, h, c = self.encode(points)
        w1e = self.w1(e)
        x = self.go_rows(b, points)
        visited = torch.zeros(b, n, dtype=torch.bool)
        logp = points.new_zeros(b)
        tour, steps = [], []
        for _ in range(n):
            lp, h, c = self.step(w1e, x, h, c, visited)
            j = lp.argmax(-1)  # first maximum, like mlc's argmax
            lpj = lp.gather(1, j[:, None])[:, 0]
            x = self.pick(points, j)
            visited = visited | F.one_hot(j, n).bool()
            logp = logp + lpj
            tour.append(j)
            steps.append(lp)
        return torch.stack(tour, 1), logp, torch.stack(steps, 1)

    def beam(self, points, k):
        """Beams flattened into the batch (row b*K + k), K*N extensions, top K, parents gathered."""
        b, n, cdim = points.shape
        assert k <= n
        e, h0, c0 = self.encode(points)
        w1e = self.w1(e)
        w1e_k = w1e.repeat_interleave(k, 0)
        pts_k = points.repeat_interleave(k, 0)
        h, c = h0.repeat_interleave(k, 0), c0.repeat_interleave(k, 0)
        x = self.go_rows(b * k, points)
        visited = torch.zeros(b * k, n, dtype=torch.bool)
        score = torch.full((b, k), NEG_INF, dtype=points.dtype)
        score[:, 0] = 0.0  # only beam 0 is live at first
        tours = torch.zeros(b * k, n, dtype=torch.long)
        base = torch.arange(b)[:, None] * k
        for i in range(n):
            lp, h2, c2 = self.step(w1e_k, x, h, c, visited)
            cand = (score[:, :, None] + lp.reshape(b, k, n)).reshape(b, k * n)
            # top K, best first; equal values keep the lower index first (a stable sort)
            best, idx = torch.sort(cand, dim=-1, descending=True, stable=True)
            best, idx = best[:, :k], idx[:, :k]
            parent = idx // n
            j = (idx % n).reshape(b * k)
            rows = (base + parent).reshape(b * k)
            tours = tours[rows].clone()
            tours[:, i] = j
            h, c = h2[rows], c2[rows]
            visited = visited[rows] | F.one_hot(j, n).bool()
            x = self.pick(pts_k, j)
            score = best
        beams = tours.reshape(b, k, n)
        return beams[:, 0], score[:, 0], beams, score

    def hull(self, points, no_repeat=True):
        b, n, cdim = points.shape
        inputs = torch.cat([self.eos.to(points.dtype)[None, None, :].expand(b, 1, cdim), points], 1)
        e, h, c = self.encode(inputs)
        w1e = self.w1(e)
        points_only = torch.arange(n + 1)[None, :].expand(b, -1) != 0
        x = self.go_rows(b, points)
        visited = torch.zeros(b, n + 1, dtype=torch.bool)
        done = torch.zeros(b, dtype=torch.bool)
        lengths = torch.zeros(b, dtype=torch.long)
        logp = points.new_zeros(b)
        out = torch.zeros(n + 1, b, dtype=torch.long)  # rows after an early stop stay 0 (EOS)
        for i in range(n + 1):
            lp, h, c = self.step(w1e, x, h, c, visited)
            j = lp.argmax(-1)
            lpj = lp.gather(1, j[:, None])[:, 0]
            done2 = done | (j == 0)
            if no_repeat:
                visited = visited | (F.one_hot(j, n + 1).bool() & points_only)
            x = self.pick(inputs, j)
            lengths = lengths + (~done2).long()
            logp = logp + torch.where(done, torch.zeros_like(lpj), lpj)
            out[i] = torch.where(done, torch.zeros_like(j), j)
            done = done2
            if bool(done.all()):
                break
        return out.T.contiguous(), lengths, logp

    def scores(self, points, tour):
        b, n, _ = points.shape
        e, h, c = self.encode(points)
        w1e = self.w1(e)
        x = self.go_rows(b, points)
        visited = torch.zeros(b, n, dtype=torch.bool)
        out = []
        for i in range(n):
            lp, h, c = self.step(w1e, x, h, c, visited)
            j = tour[:, i]
            out.append(lp.gather(1, j[:, None])[:, 0])
            x = self.pick(points, j)
            visited = visited | F.one_hot(j, n).bool()
        step_logp = torch.stack(out, 1)
        return step_logp, step_logp.sum(1)

    # -- teacher-forced training loss (the whole sequence at once, same masking as the entries)

    def _lstm_seq(self, cell, x, hc):
        """Runs `cell`'s weights over x [B, T, C] with torch's fused LSTM (same math as LSTMCell)."""
        h0, c0 = hc
        out, h, c = torch._VF.lstm(
            x, (h0[None], c0[None]), [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh],
            True, 1, 0.0, self.training, False, True)
        return out, h[0], c[0]

    def loss(self, inputs, target, valid, eos_slot):
        """inputs [B, M, 2] (the encoder's sequence, EOS prepended for hull), target [B, L] slot
        indices (padding anywhere `valid` is false), mean NLL over valid steps."""
        b, m, cdim = inputs.shape
        z = inputs.new_zeros(b, self.hidden)
        e, h, c = self._lstm_seq(self.encoder, inputs, (z, z))
        w1e = self.w1(e)
        tgt = target.clamp(min=0)
        prev = inputs[torch.arange(b)[:, None], tgt[:, :-1]]  # [B, L-1, 2]
        dec_in = torch.cat([self.go[None, None, :].expand(b, 1, cdim), prev], 1)
        d, _, _ = self._lstm_seq(self.decoder, dec_in, (h, c))
        u = torch.tanh(w1e[:, None, :, :] + self.w2(d)[:, :, None, :]) @ self.v  # [B, L, M]
        onehot = F.one_hot(tgt, m) * valid[:, :, None]
        visited = (onehot.cumsum(1) - onehot) > 0  # chosen at an earlier step
        if eos_slot:
            visited[:, :, 0] = False
        lp = torch.log_softmax(u.masked_fill(visited, NEG_INF), -1)
        nll = -lp.gather(2, tgt[:, :, None])[:, :, 0]
        return (nll * valid).sum() / valid.sum()


# ---------------------------------------------------------------- exact solutions


def tour_lengths(points, tours):
    """Closed tour lengths: points [B, N, 2], tours [B, N] (numpy)."""
    p = np.take_along_axis(points, tours[:, :, None], 1)
    return np.linalg.norm(p - np.roll(p, -1, 1), axis=-1).sum(-1)


def held_karp(points):
    """Exact TSP tours for a batch of same-size instances (numpy, vectorised over the batch).
    Returns tours [B, N] starting at 0, oriented so that tour[1] < tour[-1]."""
    pts = points.astype(np.float64)
    b, n, _ = pts.shape
    d = np.linalg.norm(pts[:, :, None] - pts[:, None, :], axis=-1)  # [B, N, N]
    full = 1 << n
    dp = np.full((b, full, n), np.inf)
    parent = np.zeros((b, full, n), dtype=np.int8)
    dp[:, 1, 0] = 0.0
    for s in range(1, full):
        if not s & 1:
            continue
        for j in range(1, n):
            if not s >> j & 1:
                continue
            prev = s ^ (1 << j)
            cost = dp[:, prev, :] + d[:, :, j]
            k = cost.argmin(-1)
            dp[:, s, j] = cost[np.arange(b), k]
            parent[:, s, j] = k
    last = dp[:, full - 1, :] + d[:, :, 0]
    last[:, 0] = np.inf
    j = last.argmin(-1)
    tours = np.zeros((b, n), dtype=np.int64)
    s = np.full(b, full - 1)
    for pos in range(n - 1, 0, -1):
        tours[:, pos] = j
        pj = parent[np.arange(b), s, j]
        s = s ^ (1 << j)
        j = pj.astype(np.int64)
    flip = tours[:, 1] > tours[:, -1]
    tours[flip, 1:] = tours[flip, 1:][:, ::-1]
    return tours


def convex_hull(pts):
    """Andrew's monotone chain: the hull's point indices (0-based), counter-clockwise, starting at
    the lowest index on the hull; collinear points on an edge are left out."""
    order = sorted(range(len(pts)), key=lambda i: (pts[i][0], pts[i][1]))

    def cross(o, a, b):
        return (pts[a][0] - pts[o][0]) * (pts[b][1] - pts[o][1]) - (pts[a][1] - pts[o][1]) * (pts[b][0] - pts[o][0])

    lower, upper = [], []
    for i in order:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], i) <= 0:
            lower.pop()
        lower.append(i)
    for i in reversed(order):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], i) <= 0:
            upper.pop()
        upper.append(i)
    hull = lower[:-1] + upper[:-1]  # counter-clockwise
    start = hull.index(min(hull))
    return hull[start:] + hull[:start]


def hull_targets(points):
    """Target sequences over the EOS-prepended slots: 1-based hull indices then 0 (EOS), padded
    with -1 to N + 1. Returns int64 [B, N + 1]."""
    b, n, _ = points.shape
    out = np.full((b, n + 1), -1, dtype=np.int64)
    for r in range(b):
        h = convex_hull(points[r].astype(np.float64).tolist())
        out[r, : len(h)] = np.array(h) + 1
        out[r, len(h)] = 0
    return out


# ---------------------------------------------------------------- training


def train(task, steps, batch, seed, log_every=100):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = PointerNet(hidden=128)
    with torch.no_grad():  # a larger scale for the 2-d inputs (see `fold_centering`)
        for cell in (model.encoder, model.decoder):
            nn.init.uniform_(cell.weight_ih, -1.0, 1.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    t0 = time.time()
    avg = None
    for it in range(steps):
        n = int(rng.integers(5, 11))
        pts = rng.random((batch, n, 2), dtype=np.float32)
        centred = 2.0 * torch.from_numpy(pts) - 1.0
        if task == "tsp":
            tgt = held_karp(pts)
            inputs = centred
            valid = torch.ones(tgt.shape, dtype=torch.float32)
            loss = model.loss(inputs, torch.from_numpy(tgt), valid, eos_slot=False)
        else:
            tgt = hull_targets(pts)
            inputs = torch.cat([model.eos[None, None, :].expand(batch, 1, 2), centred], 1)
            valid = torch.from_numpy((tgt >= 0).astype(np.float32))
            loss = model.loss(inputs, torch.from_numpy(tgt), valid, eos_slot=True)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        sched.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if (it + 1) % log_every == 0:
            print(f"{task} step {it + 1}/{steps} loss {avg:.4f} ({time.time() - t0:.0f} s)", flush=True)
    return fold_centering(model)


def fold_centering(model):
    """Training reads the points centred, x' = 2x - 1 (it learns far faster than on [0, 1]^2).
    The affine map is folded into the weights, so the saved model reads raw points exactly like
    the DSL: W x' + b = (2W) x + (b - W 1); `go` and `eos` are fed to the LSTMs as they are, so
    they move to the raw frame: v' = 2v - 1 <=> v = (v' + 1) / 2."""
    with torch.no_grad():
        for cell in (model.encoder, model.decoder):
            cell.bias_ih -= cell.weight_ih.sum(1)
            cell.weight_ih *= 2.0
        model.go.copy_((model.go + 1.0) / 2.0)
        model.eos.copy_((model.eos + 1.0) / 2.0)
    return model


def save_weights(model, path):
    save_file({k: v.detach().float().contiguous() for k, v in model.state_dict().items()}, path)


def load_model(path):
    sd = load_file(path)
    model = PointerNet(hidden=sd["v"].shape[0])
    model.load_state_dict(sd)
    return model.eval()


# ---------------------------------------------------------------- goldens and evaluation


EVAL_NS = list(range(5, 11))  # 1,000 instances per task: n = 5..10, 167 or 166 of each


def eval_counts():
    total = 1000
    return [total // len(EVAL_NS) + (1 if i < total % len(EVAL_NS) else 0) for i in range(len(EVAL_NS))]


def write_eval(tsp, hull, path, k=3):
    rng = np.random.default_rng(20150609)  # not the training seeds: fresh instances
    out = {}
    lens_greedy, lens_beam, lens_opt, hull_ok, hull_valid = [], [], [], [], []
    for n, cnt in zip(EVAL_NS, eval_counts()):
        pts = rng.random((cnt, n, 2), dtype=np.float32)
        opt = held_karp(pts)
        with torch.no_grad():
            tour, _, _ = tsp.greedy(torch.from_numpy(pts))
            btour, _, _, _ = tsp.beam(torch.from_numpy(pts), k)
        lens_opt.append(tour_lengths(pts.astype(np.float64), opt))
        lens_greedy.append(tour_lengths(pts.astype(np.float64), tour.numpy()))
        lens_beam.append(tour_lengths(pts.astype(np.float64), btour.numpy()))
        out[f"tsp_points_n{n}"] = torch.from_numpy(pts)
        out[f"tsp_optimal_n{n}"] = torch.from_numpy(opt)
        out[f"tsp_greedy_n{n}"] = tour
        out[f"tsp_beam_n{n}"] = btour

        hpts = rng.random((cnt, n, 2), dtype=np.float32)
        tgt = hull_targets(hpts)
        with torch.no_grad():
            hseq, lengths, _ = hull.hull(torch.from_numpy(hpts))
        target_padded = np.where(tgt < 0, 0, tgt)
        hull_ok.append((hseq.numpy() == target_padded).all(-1))
        out[f"hull_points_n{n}"] = torch.from_numpy(hpts)
        out[f"hull_target_n{n}"] = torch.from_numpy(target_padded)
        out[f"hull_pred_n{n}"] = hseq
    summary = {
        "tsp_mean_length_greedy": np.concatenate(lens_greedy).mean(),
        "tsp_mean_length_beam": np.concatenate(lens_beam).mean(),
        "tsp_mean_length_optimal": np.concatenate(lens_opt).mean(),
        "hull_accuracy": np.concatenate(hull_ok).mean(),
    }
    for n, a, b, c, h in zip(EVAL_NS, lens_greedy, lens_beam, lens_opt, hull_ok):
        print(f"  n={n}: TSP greedy {a.mean():.4f} beam{k} {b.mean():.4f} optimal {c.mean():.4f}; "
              f"hull accuracy {100 * h.mean():.1f}%")
    for key, val in summary.items():
        out[key] = torch.tensor([val], dtype=torch.float32)
    print("  " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
    save_file({k: v.contiguous() for k, v in out.items()}, path)


def write_goldens(tsp, hull, rnd, path):
    """Per-entry inputs and expected outputs, computed in float64.

    trained (hidden 128): `tsp_*` with weights_tsp (greedy, beam K=3, scores), `hull_*` with
    weights_hull (hull). random (hidden 32, weights_random): `rnd_*`, every entry at B=4, N=6, and
    hull with hull_no_repeat=false (`rnd_hull_free_*`), which may run all N+1 steps."""
    g = torch.Generator().manual_seed(4)
    out = {}

    def run_all(prefix, model, b, n, k):
        m = model.double()
        pts = torch.rand(b, n, 2, generator=g)
        pts32 = pts.float()
        p = pts32.double()
        with torch.no_grad():
            e, hN, cN = m.encode(p)
            tour, logp, steps = m.greedy(p)
            bt, bs, beams, bscores = m.beam(p, k)
            perm = torch.stack([torch.randperm(n, generator=g) for _ in range(b)])
            tour_rev = perm.clone()
            tour_rev[:, -1] = tour_rev[:, 0]  # a revisit: its step gets log p = -inf
            sl, sll = m.scores(p, perm)
            slr, sllr = m.scores(p, tour_rev)
        out.update({
            f"{prefix}_points": pts32,
            f"{prefix}_encoder_states": e, f"{prefix}_encoder_h": hN, f"{prefix}_encoder_c": cN,
            f"{prefix}_w1e": m.w1(e).detach(),
            f"{prefix}_greedy_tour": tour, f"{prefix}_greedy_logp": logp, f"{prefix}_greedy_step_logp": steps,
            f"{prefix}_beam_tour": bt, f"{prefix}_beam_score": bs,
            f"{prefix}_beam_beams": beams, f"{prefix}_beam_beam_scores": bscores,
            f"{prefix}_scores_tour": perm, f"{prefix}_scores_step_logp": sl, f"{prefix}_scores_logp": sll,
            f"{prefix}_scores_revisit_tour": tour_rev,
            f"{prefix}_scores_revisit_step_logp": slr, f"{prefix}_scores_revisit_logp": sllr,
        })
        model.float()

    def run_hull(prefix, model, b, n, no_repeat):
        m = model.double()
        pts32 = torch.rand(b, n, 2, generator=g).float()
        with torch.no_grad():
            hs, lengths, logp = m.hull(pts32.double(), no_repeat)
        out.update({f"{prefix}_points": pts32, f"{prefix}_hull": hs, f"{prefix}_lengths": lengths,
                    f"{prefix}_logp": logp})
        model.float()

    run_all("tsp", tsp, 4, 8, 3)
    run_hull("hull", hull, 4, 8, True)
    run_all("rnd", rnd, 4, 6, 3)
    run_hull("rnd_hull", rnd, 4, 6, True)
    run_hull("rnd_hull_free", rnd, 4, 6, False)
    save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in out.items()}, path)


def self_checks(tsp):
    """The architectures.md invariants, in PyTorch."""
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(16, 9, 2, generator=g, dtype=torch.float64)
    m = tsp.double()
    with torch.no_grad():
        tour, logp, _ = m.greedy(pts)
        assert (tour.sort(1).values == torch.arange(9)).all(), "tours are permutations"
        bt, bs, _, _ = m.beam(pts, 1)
        assert (bt == tour).all() and torch.allclose(bs, logp), "beam width 1 == greedy"
        _, sl = m.scores(pts, tour)
        assert torch.allclose(sl, logp), "teacher forcing reproduces greedy's log p"
        e, h, c = m.encode(pts)
        d = torch.randn(16, m.hidden, generator=g, dtype=torch.float64)
        per_step = torch.stack([torch.tanh(m.w1(e[:, j]) + m.w2(d)) @ m.v for j in range(9)], 1)
        assert torch.allclose(per_step, m.pointer_scores(m.w1(e), d)), "W1 E precompute == recompute"
    tsp.float()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="train weights_tsp and weights_hull first")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--only", choices=["tsp", "hull"], help="train one task only")
    args = ap.parse_args()
    if args.train:
        for task, seed in (("tsp", 1), ("hull", 2)):
            if args.only and task != args.only:
                continue
            model = train(task, args.steps, args.batch, seed)
            save_weights(model, os.path.join(HERE, f"weights_{task}.safetensors"))
        if args.only:
            return 0
    torch.manual_seed(0)
    save_weights(PointerNet(hidden=32), os.path.join(HERE, "weights_random.safetensors"))
    tsp = load_model(os.path.join(HERE, "weights_tsp.safetensors"))
    hull = load_model(os.path.join(HERE, "weights_hull.safetensors"))
    rnd = load_model(os.path.join(HERE, "weights_random.safetensors"))
    self_checks(tsp)
    write_goldens(tsp, hull, rnd, os.path.join(HERE, "golden.safetensors"))
    print("evaluation on 1,000 fresh instances per task (float32):")
    write_eval(tsp, hull, os.path.join(HERE, "eval.safetensors"))


if __name__ == "__main__":
    sys.exit(main())
