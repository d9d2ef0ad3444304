//! The session's arena: one allocation holding every intermediate buffer that kernels and
//! matrix products write, at offsets laid out by [`mlc_sched::memory::place_arena`] (liveness,
//! in-place reuse) for the sizes one set of dim bindings gives.
//!
//! [`Arena::layout`] caches the layout of each entry point per set of bindings (a few sets
//! per entry, most recently used first), so a run recomputes nothing while the dims stay the
//! same; the allocation grows when a layout needs more bytes and is never shrunk nor
//! reallocated otherwise.
//!
//! ## What lives where
//!
//! - A temporary written by a kernel, an `f32` product, a `concat` or a loop gets an arena
//!   offset.
//! - The entry's outputs are typed allocations ([`super::storage::RawBuf`]) that become the
//!   returned tensors without a copy: fresh ones, or those of the tensors handed to
//!   `Session::run_into`. (Fresh memory costs a page fault per 4 KiB on first write, which for
//!   large outputs can cost more than the kernel writing them; transparent huge pages were
//!   tried and dropped: on this project's VMs a fault that must compact memory for a huge
//!   page stalled runs for 150-250 ms.)
//! - Kernels write every element of what they write (the scheduler's kernels do), so no place
//!   is cleared before a run; debug builds fill the arena with NaNs to catch a read of a place
//!   not written in this run.
//! - Results of other reference ops (`Step::Op`, products of other dtypes) stay owned host
//!   tensors;
//!   they get no arena space. Inputs are views of the caller's tensors; weights and constants
//!   are shared host tensors.
//!
//! ## Loops
//!
//! Each loop step gets an area after its frame's region: two copies of the body's region,
//! used by alternate iterations (iteration `i` runs in copy `i % 2`), then the areas of the
//! body's own loops. The carried values an iteration produces live in its copy and are read by
//! the next iteration, which writes the other copy, so nothing is overwritten while it is read
//! and carried values are never copied between iterations (double buffering rather than
//! copying out: a carried KV cache would otherwise be copied every step). The one case left is
//! a carried value passed through unchanged for an iteration (`next prev = x`): two iterations
//! later it points into the copy about to be written, so the loop copies such a value out to
//! an owned buffer before that iteration (see `control.rs`). The final carried values and the
//! stacked emits are copied into the loop step's own outputs, so a loop's area is dead once
//! the step ends and sibling loops share one area.

use std::sync::Arc;

use mlc_ir::{Bindings, BufKind, DType, FunctionPlan, ModulePlan, Op, Step};
use mlc_sched::memory::{ALIGN, place_arena, step_access};

use super::buffers::eval_buf_shapes;
use crate::error::RuntimeError;
use crate::interp::RunOptions;
use crate::tensor::shape_numel;

/// Layouts kept per entry point (distinct sets of bindings, most recently used first).
const CACHED_LAYOUTS: usize = 4;

/// Where a buffer of a plan lives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// At this byte offset from its frame's base in the arena.
    Arena(usize),
    /// Wherever its value is put: inputs, weights, constants, results of reference ops, the
    /// entry's outputs (fresh allocations) and empty buffers.
    Own,
}

/// The layout of one plan (an entry or a loop body) for one set of bindings.
#[derive(Debug)]
pub struct FnLayout {
    /// The evaluated shape of every buffer.
    pub shapes: Vec<Arc<[usize]>>,
    /// Where every buffer lives.
    pub places: Vec<Place>,
    /// Bytes of this plan's own region (a multiple of [`ALIGN`]).
    pub peak: usize,
    /// Per step: the layout of a loop's body, `None` for other steps.
    pub loops: Vec<Option<LoopLayout>>,
}

/// A loop step's body and where its two region copies start.
#[derive(Debug)]
pub enum LoopLayout {
    Ready {
        body: FnLayout,
        /// Absolute arena offsets of the body's region for even and odd iterations.
        bases: [usize; 2],
    },
    /// Evaluating the body's shapes failed; the loop step reports it when it runs (as it did
    /// before the arena existed, after checking its trip count).
    Failed,
}

/// The layout of an entry point for one set of bindings, with the arena bytes it needs.
#[derive(Debug)]
pub struct EntryLayout {
    pub main: FnLayout,
    pub bytes: usize,
}

struct Cached {
    bindings: Bindings,
    max_elements: usize,
    layout: Arc<EntryLayout>,
}

/// One cache line, the unit of the arena's allocation (so every offset is 64-byte aligned).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const _: () = assert!(ALIGN == std::mem::size_of::<Line>());

/// A session's memory for intermediate buffers and its cached layouts; see the
/// [module documentation](self).
#[derive(Default)]
pub struct Arena {
    lines: Vec<Line>,
    /// Per entry point (by index in the module plan).
    cache: Vec<Vec<Cached>>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("bytes", &self.capacity())
            .field("layouts", &self.cache.iter().map(|c| c.len()).sum::<usize>())
            .finish()
    }
}

impl Arena {
    /// The bytes allocated.
    pub fn capacity(&self) -> usize {
        self.lines.len() * ALIGN
    }

    /// The layout of entry `index` (`f`) for `bindings`, from the cache or computed and
    /// cached; the allocation grows to fit it.
    pub fn layout(
        &mut self,
        plan: &ModulePlan,
        index: usize,
        f: &FunctionPlan,
        bindings: &Bindings,
        opts: &RunOptions,
    ) -> Result<Arc<EntryLayout>, RuntimeError> {
        if self.cache.len() <= index {
            self.cache.resize_with(index + 1, Vec::new);
        }
        let cache = &mut self.cache[index];
        let hit = cache
            .iter()
            .position(|c| c.max_elements == opts.max_elements && c.bindings == *bindings);
        let layout = match hit {
            Some(i) => {
                let c = cache.remove(i);
                let layout = c.layout.clone();
                cache.insert(0, c);
                layout
            }
            None => {
                let layout = Arc::new(entry_layout(plan, f, bindings, opts)?);
                cache.insert(
                    0,
                    Cached {
                        bindings: bindings.clone(),
                        max_elements: opts.max_elements,
                        layout: layout.clone(),
                    },
                );
                cache.truncate(CACHED_LAYOUTS);
                layout
            }
        };
        if layout.bytes > opts.max_arena_bytes {
            return Err(RuntimeError::ArenaTooLarge {
                entry: f.name.clone(),
                bytes: layout.bytes,
                limit: opts.max_arena_bytes,
            });
        }
        let lines = layout.bytes.div_ceil(ALIGN);
        if self.lines.len() < lines {
            // Grow only: the old contents are dead between runs, so nothing is copied.
            self.lines = Vec::new();
            self.lines = vec![Line([0; 64]); lines];
        }
        // Debug builds fill the arena with NaNs (and -1s) before every run, so that a kernel
        // reading a place before it is written, or a value read after its place was reused,
        // shows up in tests instead of reading the previous run's identical bits.
        #[cfg(debug_assertions)]
        self.lines[..lines].fill(Line([0xff; 64]));
        Ok(layout)
    }

    /// The base address of the arena (valid for [`Arena::capacity`] bytes until the next
    /// [`Arena::layout`]).
    pub fn base(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast::<u8>()
    }
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Lays out an entry point: its region at offset 0, its loops' areas after it.
pub fn entry_layout(
    plan: &ModulePlan,
    f: &FunctionPlan,
    bindings: &Bindings,
    opts: &RunOptions,
) -> Result<EntryLayout, RuntimeError> {
    let shapes = eval_buf_shapes(f, bindings, opts)?;
    let (places, peak) = region(plan, f, &shapes, true);
    let mut end = peak;
    let ctx = Ctx { plan, bindings, opts };
    let loops = ctx.loops(f, peak, &mut end);
    let main = FnLayout {
        shapes: shapes.into_iter().map(Arc::from).collect(),
        places,
        peak,
        loops,
    };
    Ok(EntryLayout { main, bytes: end })
}

/// The offsets of `f`'s arena buffers within its region, and the region's size.
fn region(plan: &ModulePlan, f: &FunctionPlan, shapes: &[Vec<usize>], entry: bool) -> (Vec<Place>, usize) {
    let in_arena = arena_buffers(plan, f, entry);
    let sizes: Vec<usize> = shapes
        .iter()
        .zip(&f.bufs)
        .zip(&in_arena)
        .map(|((s, buf), &yes)| {
            if yes {
                shape_numel(s).saturating_mul(buf.ty.dtype.size_bytes())
            } else {
                0
            }
        })
        .collect();
    let (offsets, peak) = place_arena(plan, f, &sizes);
    let places = (0..f.bufs.len())
        .map(|b| match offsets[b] {
            Some(off) if sizes[b] > 0 => Place::Arena(off),
            _ => Place::Own,
        })
        .collect();
    (places, align(peak))
}

struct Ctx<'a> {
    plan: &'a ModulePlan,
    bindings: &'a Bindings,
    opts: &'a RunOptions,
}

impl Ctx<'_> {
    /// The layouts of `f`'s loop steps, whose areas start at absolute offset `at` (one area
    /// shared by sibling loops); `end` is raised to the end of everything placed.
    fn loops(&self, f: &FunctionPlan, at: usize, end: &mut usize) -> Vec<Option<LoopLayout>> {
        f.steps
            .iter()
            .map(|step| {
                let Step::Loop { body, .. } = step else {
                    return None;
                };
                let Ok(shapes) = eval_buf_shapes(body, self.bindings, self.opts) else {
                    return Some(LoopLayout::Failed);
                };
                let (places, peak) = region(self.plan, body, &shapes, false);
                let bases = [at, at + peak];
                *end = (*end).max(at + 2 * peak);
                let loops = self.loops(body, at + 2 * peak, end);
                let body = FnLayout {
                    shapes: shapes.into_iter().map(Arc::from).collect(),
                    places,
                    peak,
                    loops,
                };
                Some(LoopLayout::Ready { body, bases })
            })
            .collect()
    }
}

/// Which temporaries of `f` go in the arena: those written by a kernel, an `f32` product, a
/// `concat` or a loop, except the entry's outputs.
fn arena_buffers(plan: &ModulePlan, f: &FunctionPlan, entry: bool) -> Vec<bool> {
    let mut yes = vec![false; f.bufs.len()];
    for step in &f.steps {
        let writes = match step {
            Step::Kernel { .. } | Step::Loop { .. } => step_access(plan, step).1,
            Step::MatMul { a, b, out, .. } => {
                let f32 = |x: u32| f.bufs.get(x as usize).is_some_and(|p| p.ty.dtype == DType::F32);
                if f32(*a) && f32(*b) { vec![*out] } else { Vec::new() }
            }
            Step::Attention { out, .. } => vec![*out],
            Step::Op {
                op: Op::Concat { .. },
                outputs,
                ..
            } => outputs.clone(),
            Step::Op { .. } => Vec::new(),
        };
        for b in writes {
            if let Some(y) = yes.get_mut(b as usize) {
                *y = true;
            }
        }
    }
    // A buffer another `Op` step writes holds the op's host tensor.
    for step in &f.steps {
        if let Step::Op { op, outputs, .. } = step
            && !matches!(op, Op::Concat { .. })
        {
            for &b in outputs {
                if let Some(y) = yes.get_mut(b as usize) {
                    *y = false;
                }
            }
        }
    }
    for (y, b) in yes.iter_mut().zip(&f.bufs) {
        if b.kind != BufKind::Temp {
            *y = false;
        }
    }
    if entry {
        for (_, b) in &f.outputs {
            if let Some(y) = yes.get_mut(*b as usize) {
                *y = false;
            }
        }
    }
    yes
}
