#!/usr/bin/env python3
"""Writes the GGUF test fixture of mlc-runtime with the independent `gguf` Python package.

    pip install gguf numpy safetensors
    python3 scripts/make_gguf_fixture.py

Outputs (both small, checked in):
  runtime/tests/data/gguf/fixture.gguf                    a GGUF v3 file: metadata of every
      value type and tensors of types F32, F16, BF16, Q4_0, Q4_1 and Q8_0, quantised by
      gguf-py's `gguf.quants.quantize`;
  runtime/tests/data/gguf/fixture_expected.safetensors    for every tensor, the f32 values
      gguf-py's `gguf.quants.dequantize` gives, in the row-major shape the reader must report.

runtime/tests/gguf.rs compares mlc's dequantisation against these bit for bit. The last tensor
is an F32 tensor of 32 bytes, so the file ends exactly where its data ends (no trailing
padding): every truncation of the file then has to be refused.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runtime" / "tests" / "data" / "gguf"


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The safetensors format by hand (if the `safetensors` package is missing):
    u64 header length, JSON header, then the raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240607)
    w = gguf.GGUFWriter(OUT / "fixture.gguf", arch="mlctest")

    # Metadata of every value type (the writer adds general.architecture itself).
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -2_000_000_000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo, GGUF ✓")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 2.5e-300)
    w.add_array("test.str_array", ["<s>", "</s>", "hello", "wörld"])
    w.add_key_value("test.i32_array", [1, -2, 3, 2**31 - 1], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.f32_array", [0.5, -1.25, 3.0], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("test.u16_array", [1, 2, 65535], V.ARRAY, sub_type=V.UINT16)
    w.add_key_value("test.bool_array", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_array("test.nested", [[1, 2], [3], ["a", "b", "c"]])
    w.add_uint32("mlctest.block_count", 2)

    expected: dict[str, np.ndarray] = {}

    def add(name: str, values: np.ndarray, qtype: T) -> None:
        values = values.astype(np.float32)
        if qtype == T.F32:
            w.add_tensor(name, values)
            deq = values
        elif qtype == T.F16:
            half = values.astype(np.float16)
            w.add_tensor(name, half)
            deq = gguf.quants.dequantize(half, T.F16)
        else:
            q = gguf.quants.quantize(values, qtype)
            w.add_tensor(name, q, raw_dtype=qtype)
            deq = gguf.quants.dequantize(q, qtype)
        deq = np.asarray(deq, dtype=np.float32).reshape(values.shape)
        assert np.all(np.isfinite(deq)), name
        expected[name] = deq

    add("f32.mat", rng.normal(size=(3, 5)), T.F32)
    add("f16.mat", rng.normal(size=(2, 7)) * 10, T.F16)
    add("bf16.mat", rng.normal(size=(4, 3)) * 1000, T.BF16)
    add("q4_0.mat", rng.normal(size=(3, 64)), T.Q4_0)
    add("q4_1.mat", rng.normal(size=(2, 64)) + 0.5, T.Q4_1)
    add("q8_0.cube", rng.normal(size=(2, 3, 32)) * 4, T.Q8_0)
    # 8 f32 = 32 bytes, a multiple of the alignment: no padding after the last tensor.
    add("f32.tail", np.arange(8) - 3.5, T.F32)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    try:
        from safetensors.numpy import save_file

        save_file(expected, str(OUT / "fixture_expected.safetensors"))
    except ImportError:
        write_safetensors(OUT / "fixture_expected.safetensors", expected)

    for f in ("fixture.gguf", "fixture_expected.safetensors"):
        print(f"{OUT / f}: {(OUT / f).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
