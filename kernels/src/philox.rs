//! Philox-4x32-10, the counter-based generator behind every random number in mlc.
//!
//! Philox (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
//! maps a 128-bit counter and a 64-bit key to 128 random bits with no state, so element `i` of a
//! random tensor can be computed independently on any device. [`uniform_f32`] defines the exact
//! stream that the interpreter, the CPU backend and the GPU kernels share; [`normal_f32`] is the
//! normal variate used to initialise weights.

/// Multiplier of the first lane pair.
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// Multiplier of the second lane pair.
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Key schedule increment of key word 0 (the golden ratio).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// Key schedule increment of key word 1 (`sqrt(3) - 1`).
pub const PHILOX_W1: u32 = 0xBB67_AE85;

/// `2^-24`: the spacing of the uniform values.
const INV_2_24: f32 = 1.0 / 16_777_216.0;

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

#[inline]
fn round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
    let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
    [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0]
}

/// The Philox-4x32 bijection with 10 rounds, as in Random123's `philox4x32_R(10, ...)`.
///
/// Each round multiplies lanes 0 and 2 by `M0`/`M1`, mixes the high halves with lanes 1/3 and
/// the key; between rounds the key is bumped by `(W0, W1)` (wrapping).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for r in 0..10 {
        if r > 0 {
            k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        }
        c = round(c, k);
    }
    c
}

/// The raw 32-bit word of element `index` of the stream `(seed, offset)`.
///
/// See [`uniform_f32`] for the exact layout.
pub fn stream_u32(seed: u64, offset: u64, index: u64) -> u32 {
    let key = [seed as u32, (seed >> 32) as u32];
    let block = index / 4;
    let counter = [block as u32, (block >> 32) as u32, offset as u32, (offset >> 32) as u32];
    philox4x32_10(counter, key)[(index % 4) as usize]
}

/// Element `index` of the uniform stream `(seed, offset)`: an `f32` in `[0, 1)`.
///
/// This is the contract every mlc backend implements bit for bit:
///
/// - key = `(seed as u32, (seed >> 32) as u32)` (low word first);
/// - `block = index / 4`, `lane = index % 4`;
/// - counter = `(block as u32, (block >> 32) as u32, offset as u32, (offset >> 32) as u32)`;
/// - `out = philox4x32_10(counter, key)`;
/// - value = `(out[lane] >> 8) as f32 * 2^-24`, exact in `f32` (24 significant bits), so the
///   values are the multiples of `2^-24` in `[0, 1 - 2^-24]`.
///
/// The `rng_uniform` op fills element `i` (row-major) with `uniform_f32(seed, offset, i)`.
pub fn uniform_f32(seed: u64, offset: u64, index: u64) -> f32 {
    (stream_u32(seed, offset, index) >> 8) as f32 * INV_2_24
}

/// Element `index` of a standard normal stream `(seed, offset)`, by Box–Muller.
///
/// Uses the two uniforms `u1 = uniform_f32(seed, offset, 2 * index)` and
/// `u2 = uniform_f32(seed, offset, 2 * index + 1)` (wrapping multiplication; both come from the
/// same Philox block). `u1` is clamped to at least `2^-24` so the logarithm is finite. The result
/// is `sqrt(-2 ln u1) * cos(2 pi u2)` computed in `f64` and rounded to `f32`; the magnitude is at
/// most about 5.77.
///
/// Only the uniform stream is a cross-device contract: `ln` and `cos` come from the platform's
/// math library, so a normal value may differ in the last bit between platforms. It is used to
/// initialise weights on the host, never inside compiled kernels.
pub fn normal_f32(seed: u64, offset: u64, index: u64) -> f32 {
    let i = index.wrapping_mul(2);
    let u1 = uniform_f32(seed, offset, i).max(INV_2_24);
    let u2 = uniform_f32(seed, offset, i.wrapping_add(1));
    let r = (-2.0 * f64::from(u1).ln()).sqrt();
    (r * (2.0 * std::f64::consts::PI * f64::from(u2)).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_vectors() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([0xffff_ffff; 4], [0xffff_ffff; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn stream_layout() {
        // seed 0, offset 0, indices 0..4 are the lanes of the known-answer block 0.
        let expected = [0x6627e8d5u32, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];
        for (i, w) in expected.iter().enumerate() {
            assert_eq!(stream_u32(0, 0, i as u64), *w);
            assert_eq!(uniform_f32(0, 0, i as u64), (w >> 8) as f32 / 16_777_216.0);
        }
        // The seed is the key (low word first), the block the lower counter half, the offset
        // the upper counter half.
        let seed = 0x299f31d0_a4093822u64;
        let offset = 0x03707344_13198a2eu64;
        let block = 0x05a308d3_243f6a88u64;
        let out = philox4x32_10(
            [0x243f6a88, 0x05a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
        );
        for lane in 0..4 {
            assert_eq!(stream_u32(seed, offset, block * 4 + lane), out[lane as usize]);
        }
    }

    #[test]
    fn uniform_mean_and_range() {
        let n = 10_000;
        let mut sum = 0.0f64;
        for i in 0..n {
            let u = uniform_f32(42, 7, i);
            assert!((0.0..1.0).contains(&u));
            sum += f64::from(u);
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        assert_ne!(uniform_f32(42, 7, 0), uniform_f32(42, 8, 0));
        assert_ne!(uniform_f32(42, 7, 0), uniform_f32(43, 7, 0));
        assert_eq!(uniform_f32(42, 7, 123), uniform_f32(42, 7, 123));
    }

    #[test]
    fn normal_moments() {
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|i| f64::from(normal_f32(1, 0, i))).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        assert!(xs.iter().all(|x| x.is_finite() && x.abs() < 6.0));
    }
}
