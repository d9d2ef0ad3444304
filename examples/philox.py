"""Philox-4x32-10 exactly as mlc computes it (kernels/src/philox.rs), in numpy, for the PyTorch
reference scripts of the examples: sampling entries are compared with the reference token for
token, so the reference must draw the same uniforms from the same stream.

    import sys; sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from philox import philox_uniform, philox_randn, check_philox
"""

import math

import numpy as np

# ---------------------------------------------------------------- Philox-4x32-10 (numpy)

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(c, k):
    """c: four uint32 arrays (broadcast together), k: two Python ints. Returns four uint32 arrays."""
    c = [np.asarray(x, dtype=np.uint64) for x in c]
    k0, k1 = k
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
        p0 = M0 * c[0]
        p1 = M1 * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK32
        c = [hi1 ^ c[1] ^ np.uint64(k0), lo1, hi0 ^ c[3] ^ np.uint64(k1), lo0]
    return [x.astype(np.uint32) for x in c]


def stream_u32(seed: int, offset: int, idx: np.ndarray) -> np.ndarray:
    """Word `idx` of the stream (seed, offset): lane idx % 4 of
    philox(counter = (idx/4 lo, idx/4 hi, offset lo, offset hi), key = (seed lo, seed hi))."""
    seed &= (1 << 64) - 1
    offset &= (1 << 64) - 1
    idx = np.asarray(idx, dtype=np.uint64)
    block, lane = idx // np.uint64(4), (idx % np.uint64(4)).astype(np.int64)
    n = idx.shape[0]
    out = philox4x32_10(
        [block & MASK32, block >> np.uint64(32), np.full(n, offset & 0xFFFFFFFF, np.uint64),
         np.full(n, offset >> 32, np.uint64)],
        (seed & 0xFFFFFFFF, seed >> 32),
    )
    return np.stack(out, axis=-1)[np.arange(n), lane]


def philox_uniform(seed: int, offset: int, shape) -> np.ndarray:
    """mlc's `rand(seed, shape, offset)`: element i (row-major) is (stream_u32(i) >> 8) * 2^-24, f32."""
    n = int(np.prod(shape))
    words = stream_u32(seed, offset, np.arange(n, dtype=np.uint64))
    return ((words >> 8).astype(np.float32) * np.float32(2.0 ** -24)).reshape(shape)


def philox_randn(seed: int, offset: int, shape) -> np.ndarray:
    """std.math's `randn`: Box-Muller over uniforms 2i, 2i + 1, u1 clamped to 2^-24 (f32)."""
    u = philox_uniform(seed, offset, list(shape) + [2])
    u1 = np.maximum(u[..., 0], np.float32(2.0 ** -24))
    return (np.sqrt(np.float32(-2.0) * np.log(u1)) * np.cos(np.float32(2 * math.pi) * u[..., 1])).astype(np.float32)


def check_philox():
    """The known-answer vectors and the stream layout test of kernels/src/philox.rs."""
    def block(c, k):
        return [int(x[0]) for x in philox4x32_10([np.array([x], np.uint64) for x in c], k)]

    kat0 = [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert block([0, 0, 0, 0], (0, 0)) == kat0
    assert block([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF)) == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    assert block([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0)) == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]
    want = (np.array(kat0, np.uint64) >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -24)
    assert np.array_equal(philox_uniform(0, 0, [4]), want)
    seed, offset, blk = 0x299F31D0_A4093822, 0x03707344_13198A2E, 0x05A308D3_243F6A88
    out = block([0x243F6A88, 0x05A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0))
    idx = np.array([blk * 4 + lane for lane in range(4)], dtype=np.uint64)
    assert [int(w) for w in stream_u32(seed, offset, idx)] == out
