//! Memory planning: every temporary buffer of a plan gets an offset in one arena, by liveness,
//! reusing an input's bytes in place where a kernel reads it only at the element it writes.
//!
//! Shapes are symbolic, so sizes are known only once the dims are bound; the runtime calls
//! [`plan_arena`] with the evaluated sizes when a session first sees a shape, and
//! `mlc build --stats` calls it with example bindings.

use mlc_ir::plan::{BufId, BufKind, FunctionPlan, ModulePlan, Step};
use mlc_ir::{IExpr, KStmt, KernelFn, VExpr};

/// Arena offsets are multiples of this (a cache line, and enough for any SIMD load).
pub const ALIGN: usize = 64;

/// The steps during which a buffer holds a value: written by step `first`, last read by step
/// `last` (`last == steps.len()` for outputs, which outlive the plan's steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub first: usize,
    pub last: usize,
}

/// Where each temporary lives in the arena.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaLayout {
    /// Byte offset of each buffer; `None` for buffers outside the arena (inputs, weights,
    /// constants).
    pub offsets: Vec<Option<usize>>,
    /// Bytes the arena needs.
    pub peak: usize,
    /// Bytes of all temporaries added up (what one allocation per buffer would use).
    pub total: usize,
    /// The largest sum of the sizes of temporaries live at the same step: no layout can beat it.
    pub max_live: usize,
}

/// Which buffers a step reads and writes.
pub fn step_access(plan: &ModulePlan, step: &Step) -> (Vec<BufId>, Vec<BufId>) {
    step.reads_writes(&plan.kernels)
}

/// The lifetime of every temporary buffer (`None` for the others and for temporaries no step
/// writes).
pub fn lifetimes(plan: &ModulePlan, f: &FunctionPlan) -> Vec<Option<Lifetime>> {
    let mut out: Vec<Option<Lifetime>> = vec![None; f.bufs.len()];
    for (i, step) in f.steps.iter().enumerate() {
        let (reads, writes) = step_access(plan, step);
        for b in writes {
            let slot = &mut out[b as usize];
            match slot {
                Some(l) => l.last = l.last.max(i),
                None => *slot = Some(Lifetime { first: i, last: i }),
            }
        }
        for b in reads {
            if let Some(l) = &mut out[b as usize] {
                l.last = l.last.max(i);
            }
        }
    }
    for (_, b) in &f.outputs {
        if let Some(l) = &mut out[*b as usize] {
            l.last = f.steps.len();
        }
    }
    for (i, b) in f.bufs.iter().enumerate() {
        if b.kind != BufKind::Temp {
            out[i] = None;
        }
    }
    out
}

/// Pairs `(out, input)` where step `i`'s kernel may write `out` over `input`: the kernel
/// writes `out` at one index and reads `input` only at that same index, `input` dies at this
/// step, and both have the same size and dtype.
fn in_place_pairs(
    plan: &ModulePlan,
    f: &FunctionPlan,
    life: &[Option<Lifetime>],
    sizes: &[usize],
) -> Vec<(BufId, BufId)> {
    let mut pairs = Vec::new();
    for (i, step) in f.steps.iter().enumerate() {
        let Step::Kernel { kernel, bufs, .. } = step else {
            continue;
        };
        let k = &plan.kernels[*kernel as usize];
        let Some((out_k, index)) = single_store(k) else {
            continue;
        };
        let out = bufs[out_k as usize];
        for (kb, &b) in bufs.iter().enumerate() {
            let ok = kb as u32 != out_k
                && life[b as usize].is_some_and(|l| l.last == i)
                && sizes[b as usize] == sizes[out as usize]
                && f.bufs[b as usize].ty.dtype == f.bufs[out as usize].ty.dtype
                && loads_only_at(&k.body, kb as u32, index)
                && !pairs.iter().any(|(_, x)| *x == b);
            if ok {
                pairs.push((out, b));
                break;
            }
        }
    }
    pairs
}

/// The buffer and index of a kernel's only store, if it has exactly one.
fn single_store(k: &KernelFn) -> Option<(u32, &IExpr)> {
    fn collect<'a>(s: &'a [KStmt], out: &mut Vec<(u32, &'a IExpr)>) {
        for st in s {
            match st {
                KStmt::Store { buf, index, .. } => out.push((*buf, index)),
                KStmt::Loop { body, .. } => collect(body, out),
                _ => {}
            }
        }
    }
    let mut stores = Vec::new();
    collect(&k.body, &mut stores);
    (stores.len() == 1).then(|| stores[0])
}

/// True when every load of kernel buffer `buf` uses exactly `index`.
fn loads_only_at(body: &[KStmt], buf: u32, index: &IExpr) -> bool {
    let elsewhere = |e: &VExpr| matches!(e, VExpr::Load { buf: b, index: i } if *b == buf && i != index);
    body.iter().all(|s| match s {
        KStmt::Loop { body, .. } => loads_only_at(body, buf, index),
        s => s.expr().is_none_or(|e| !e.any(&elsewhere)),
    })
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Lays out the temporaries of `f` given every buffer's size in bytes: greedy by size (largest
/// first, each at the lowest offset that overlaps no placed buffer alive at the same time),
/// after merging in-place pairs into one block; with the statistics `mlc build --stats` prints.
pub fn plan_arena(plan: &ModulePlan, f: &FunctionPlan, sizes: &[usize]) -> ArenaLayout {
    let (offsets, peak, life, span) = place(plan, f, sizes);
    let n = f.bufs.len();
    let total = (0..n).filter(|&b| life[b].is_some()).map(|b| align(sizes[b])).sum();
    let steps = f.steps.len() + 1;
    let max_live = (0..steps)
        .map(|t| {
            (0..n)
                .filter(|&b| span[b].is_some_and(|l| l.first <= t && t <= l.last))
                .map(|b| align(sizes[b]))
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    ArenaLayout {
        offsets,
        peak,
        total,
        max_live,
    }
}

/// [`plan_arena`]'s offsets and peak alone, without its statistics (whose largest live set
/// costs a pass over every buffer at every step): what a runtime needs each time the dims
/// change, which a decoding loop does every token.
pub fn place_arena(plan: &ModulePlan, f: &FunctionPlan, sizes: &[usize]) -> (Vec<Option<usize>>, usize) {
    let (offsets, peak, _, _) = place(plan, f, sizes);
    (offsets, peak)
}

/// Offsets, peak, lifetimes, and the lifetimes of the blocks after merging in-place pairs.
type Placed = (Vec<Option<usize>>, usize, Vec<Option<Lifetime>>, Vec<Option<Lifetime>>);

fn place(plan: &ModulePlan, f: &FunctionPlan, sizes: &[usize]) -> Placed {
    let life = lifetimes(plan, f);
    let n = f.bufs.len();
    // Union in-place pairs: `owner[b]` is the buffer whose block `b` shares.
    let mut owner: Vec<usize> = (0..n).collect();
    let mut span: Vec<Option<Lifetime>> = life.clone();
    for (out, input) in in_place_pairs(plan, f, &life, sizes) {
        let (o, i) = (out as usize, owner[input as usize]);
        owner[o] = i;
        if let (Some(a), Some(b)) = (span[i], span[o]) {
            span[i] = Some(Lifetime {
                first: a.first.min(b.first),
                last: a.last.max(b.last),
            });
        }
        span[o] = None;
    }
    let mut blocks: Vec<usize> = (0..n).filter(|&b| span[b].is_some() && owner[b] == b).collect();
    blocks.sort_by_key(|&b| (std::cmp::Reverse(align(sizes[b])), b));
    let mut placed: Vec<(usize, usize, Lifetime)> = Vec::new();
    let mut offsets = vec![None; n];
    let mut peak = 0;
    for b in blocks {
        let (size, l) = (align(sizes[b]), span[b].expect("filtered"));
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|(_, _, pl)| pl.first <= l.last && l.first <= pl.last)
            .map(|(o, s, _)| (*o, *s))
            .collect();
        conflicts.sort();
        let mut offset = 0;
        for (o, s) in conflicts {
            if offset + size <= o {
                break;
            }
            offset = offset.max(o + s);
        }
        placed.push((offset, size, l));
        offsets[b] = Some(offset);
        peak = peak.max(offset + size);
    }
    for b in 0..n {
        if owner[b] != b {
            offsets[b] = offsets[owner[b]];
        }
    }
    (offsets, peak, life, span)
}
