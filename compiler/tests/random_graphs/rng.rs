//! A tiny seeded PRNG (splitmix64): enough for choosing ops and shapes, no dependency.
//!
//! The fuzz target `fuzz/fuzz_targets/compile_diff.rs` includes this file and lets the fuzzer's
//! bytes perturb the draws ([`set_bytes`]): draw k finalises `state ^ byte_k * K` instead of
//! `state`. Byte 0, or no byte (the property test never sets any), leaves a draw as the seed
//! makes it; the state sequence never changes.

use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    /// The perturbation bytes the next `Rng::new` takes.
    static BYTES: RefCell<Rc<[u8]>> = RefCell::new(Rc::from(Vec::new()));
}

/// Sets the perturbation bytes of the generators created from now on (on this thread).
#[allow(dead_code)] // only the fuzz target perturbs
pub fn set_bytes(b: &[u8]) {
    BYTES.with(|x| *x.borrow_mut() = Rc::from(b.to_vec()));
}

#[derive(Clone, Debug, Default)]
pub struct Rng {
    state: u64,
    bytes: Rc<[u8]>,
    pos: usize,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed ^ 0x6d6c_635f_7261_6e64,
            bytes: BYTES.with(|x| x.borrow().clone()),
            pos: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        let mut z = self.state ^ u64::from(b).wrapping_mul(0xd1b5_4a32_d192_ed03);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + (self.next_u64() % ((hi - lo) as u64 + 1)) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// An index chosen with the given weights (not all zero).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.next_u64() % total;
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        unreachable!("weights sum to {total}")
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            p.swap(i, j);
        }
        p
    }
}
