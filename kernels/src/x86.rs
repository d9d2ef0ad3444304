//! Small AVX2 helpers shared by the x86 kernels, and the feature check they need.

use std::arch::x86_64::*;

/// Whether the CPU has AVX2 and FMA, which every 256-bit kernel here needs (`std` caches the
/// detection).
pub(crate) fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Whether the CPU has AVX-512F besides AVX2 and FMA, which every 512-bit kernel here needs.
pub(crate) fn has_avx512() -> bool {
    has_avx2_fma() && is_x86_feature_detected!("avx512f")
}

/// The sum of the eight lanes, in a fixed order (so a result never depends on the caller).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}
