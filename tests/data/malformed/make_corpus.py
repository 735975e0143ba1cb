#!/usr/bin/env python3
# Regenerates the malformed-checkpoint corpus (tests/data/malformed) and the fuzz seeds; run by hand.
"""Each case is a file or a directory that `rvec inspect` must reject with a clear error.

EXPECTED.tsv lists, per case, a substring the error message must contain (besides the case's own
file name). The same single-file cases, plus valid seeds, are copied to
fuzz/corpus/safetensors_header_fuzz/ for the libFuzzer target.
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FUZZ = os.path.join(ROOT, "fuzz", "corpus", "safetensors_header_fuzz")
VALID = os.path.join(ROOT, "tests", "data", "valid")


def raw(header, data=b""):
    if isinstance(header, str):
        header = header.encode("utf-8")
    return struct.pack("<Q", len(header)) + header + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def st(tensors, data, metadata=None):
    """A valid safetensors image from {name: (dtype, shape, bytes)} in the given order."""
    head = {}
    if metadata is not None:
        head["__metadata__"] = metadata
    off = 0
    body = b""
    for name, (dtype, shape, payload) in tensors.items():
        head[name] = tensor(dtype, shape, off, off + len(payload))
        off += len(payload)
        body += payload
    text = json.dumps(head, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    return raw(text, body + data)


F32_2 = struct.pack("<2f", 1.0, 2.0)
TWO = {"a": ("F32", [2], F32_2)}

SINGLE = [
    # name, bytes, expected substring
    ("empty", b"", "file is empty"),
    ("short_length", b"\x08\x00\x00", "too short"),
    ("header_too_large", struct.pack("<Q", 200_000_000) + b"{}", "exceeds the safetensors limit"),
    ("length_u64_max", b"\xff" * 8 + b"{}", "exceeds the safetensors limit"),
    ("header_past_eof", struct.pack("<Q", 100) + b'{"a":1}', "runs past the end"),
    ("pytorch_zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, "zip archive"),
    ("bad_json", raw('{"a":{"dtype":"F32",'), "not valid JSON"),
    ("not_object", raw("[1, 2, 3]"), "must be a JSON object"),
    ("string_root", raw('"weights"'), "must be a JSON object"),
    ("trailing_garbage", raw('{}  }'), "not valid JSON"),
    ("nul_padding", raw(b"{}\x00\x00\x00\x00\x00\x00"), "NUL byte"),
    ("invalid_utf8", raw(b'{"w\xc3\x28":{}}'), "UTF-8"),
    ("byte_order_mark", raw(b"\xef\xbb\xbf{}     "), "byte order mark"),
    ("duplicate_tensor", raw('{"a":%s,"a":%s}' % (json.dumps(tensor("F32", [2], 0, 8)),
                                                json.dumps(tensor("F32", [2], 0, 8))), F32_2),
     'duplicate key "a"'),
    ("unknown_dtype", raw(json.dumps({"w": tensor("F24", [2], 0, 6)}), b"\x00" * 6),
     'unknown dtype "F24"'),
    ("dtype_not_string", raw(json.dumps({"w": {"dtype": 7, "shape": [2], "data_offsets": [0, 8]}}), F32_2),
     '"dtype" must be a string'),
    ("missing_data_offsets", raw(json.dumps({"w": {"dtype": "F32", "shape": [2]}}), F32_2),
     'missing field "data_offsets"'),
    ("negative_dim", raw(json.dumps({"w": tensor("F32", [-2], 0, 8)}), F32_2), "non-negative"),
    ("float_dim", raw(json.dumps({"w": tensor("F32", [2.0], 0, 8)}), F32_2), "non-negative"),
    ("three_offsets", raw(json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}}), F32_2),
     "[begin, end]"),
    ("shape_dtype_mismatch", raw(json.dumps({"w": tensor("BF16", [3], 0, 8)}), F32_2),
     "needs 6 bytes but data_offsets [0, 8] span 8"),
    ("hole_at_start", raw(json.dumps({"w": tensor("F32", [1], 4, 8)}), F32_2), "hole of 4 bytes"),
    ("hole_between", raw(json.dumps({"a": tensor("F32", [1], 0, 4), "b": tensor("U8", [2], 6, 8)}), F32_2),
     "hole of 2 bytes"),
    ("overlap", raw(json.dumps({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [1], 4, 8)}), F32_2),
     "overlap"),
    ("end_before_begin", raw(json.dumps({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [0], 8, 4)}), F32_2),
     "end before they begin"),
    ("shape_overflow", raw(json.dumps({"w": tensor("F32", [2**32, 2**32, 2], 0, 8)}), F32_2),
     "more elements than fit in 64 bits"),
    ("byte_size_overflow", raw(json.dumps({"w": tensor("F64", [2**62, 2], 0, 8)}), F32_2),
     "overflows 64 bits in bytes"),
    ("offset_beyond_u64", raw('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}}', F32_2),
     "two non-negative integers"),
    ("truncated_data", st(TWO, b"")[:-3], "truncated"),
    ("trailing_data", st(TWO, b"extra"), "5 unexplained trailing bytes"),
    ("metadata_number", st(TWO, b"", {"format": "pt", "step": 100}), '__metadata__ entry "step"'),
    ("metadata_not_object", raw(json.dumps({"__metadata__": "pt"})), "__metadata__ must be an object"),
    ("tensor_not_object", raw(json.dumps({"w": [0, 8]}), F32_2), "expected an object"),
    ("deep_nesting", raw('{"w":' + "[" * 500 + "]" * 500 + "}"), "nested too deeply"),
    ("unsupported_dtype_u32", raw(json.dumps({"w": tensor("U32", [2], 0, 8)}), F32_2), "not supported by rvec"),
]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_json(path, obj):
    write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def index(weight_map):
    return {"metadata": {"total_size": 0}, "weight_map": weight_map}


SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
A = {"a": ("F32", [2], F32_2)}
B = {"b": ("F32", [2], F32_2)}
AB = {"a": ("F32", [2], F32_2), "b": ("F32", [2], F32_2)}

# Directory cases: name -> (files {relative: bytes or json object}, expected substring)
DIRS = {
    "index_absolute_path": ({"model.safetensors.index.json": index({"a": "/etc/passwd"}),
                             SHARD1: st(A, b"")}, "absolute path"),
    "index_dotdot": ({"model.safetensors.index.json": index({"a": "../header_too_large.safetensors"}),
                      SHARD1: st(A, b"")}, "leaves the model directory"),
    "index_missing_shard": ({"model.safetensors.index.json": index({"a": SHARD1, "b": SHARD2}),
                             SHARD1: st(A, b"")}, "no such file"),
    "index_tensor_missing_from_shard": ({"model.safetensors.index.json": index({"a": SHARD1, "b": SHARD1}),
                                         SHARD1: st(A, b"")}, "does not contain it"),
    "index_tensor_in_two_shards": ({"model.safetensors.index.json": index({"a": SHARD1, "b": SHARD2}),
                                    SHARD1: st(AB, b""), SHARD2: st(B, b"")}, "stored in two shards"),
    "index_unlisted_tensor": ({"model.safetensors.index.json": index({"a": SHARD1}),
                               SHARD1: st(AB, b"")}, "which the index does not list"),
    "index_bad_json": ({"model.safetensors.index.json": b'{"weight_map": {"a": ', SHARD1: st(A, b"")},
                       "not valid JSON"),
    "index_no_weight_map": ({"model.safetensors.index.json": {"metadata": {"total_size": 8}},
                             SHARD1: st(A, b"")}, 'no "weight_map"'),
    "index_shard_not_string": ({"model.safetensors.index.json": index({"a": 1}), SHARD1: st(A, b"")},
                               "expected a shard file name"),
    "index_empty_weight_map": ({"model.safetensors.index.json": index({})}, "lists no tensors"),
    "index_duplicate_tensor": ({"model.safetensors.index.json":
                                b'{"weight_map": {"a": "%s", "a": "%s"}}' % (SHARD1.encode(), SHARD2.encode()),
                                SHARD1: st(A, b"")}, 'duplicate key "a"'),
    "index_shard_malformed": ({"model.safetensors.index.json": index({"a": SHARD1}),
                               SHARD1: st(A, b"")[:-2]}, SHARD1),
    "bad_config": ({"model.safetensors": st(A, b""), "config.json": {"model_type": "qwen2", "hidden_size": "big"}},
                   '"hidden_size" must be an integer'),
    "config_not_json": ({"model.safetensors": st(A, b""), "config.json": b"{model_type: qwen2}"},
                        "not valid JSON"),
    "no_weights": ({"config.json": {"model_type": "qwen2"}}, "not a safetensors model"),
    "pytorch_bin_only": ({"config.json": {"model_type": "qwen2"},
                          "pytorch_model.bin": b"PK\x03\x04" + b"\x00" * 60}, "only PyTorch pickle weights"),
}


def main():
    # Fresh corpus: remove old cases but keep this script.
    for entry in os.listdir(HERE):
        path = os.path.join(HERE, entry)
        if entry == os.path.basename(__file__):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    expected = []
    for name, data, expect in SINGLE:
        write(os.path.join(HERE, name + ".safetensors"), data)
        expected.append((name + ".safetensors", expect))
    for name, (files, expect) in DIRS.items():
        for rel, content in files.items():
            path = os.path.join(HERE, name, rel)
            if isinstance(content, (dict, list)):
                write_json(path, content)
            else:
                write(path, content)
        expected.append((name, expect))
    with open(os.path.join(HERE, "EXPECTED.tsv"), "w") as f:
        f.write("# case\tsubstring the error message must contain (literal)\n")
        for name, expect in expected:
            f.write(f"{name}\t{expect}\n")

    # Fuzz seeds: every single-file case plus valid images.
    if os.path.isdir(FUZZ):
        shutil.rmtree(FUZZ)
    os.makedirs(FUZZ)
    for name, data, _ in SINGLE:
        write(os.path.join(FUZZ, name), data)
    valid = {
        "valid_two_tensors": st(AB, b"", {"format": "pt"}),
        "valid_empty": raw("{}      "),
        "valid_scalar_and_zero": st({"s": ("F64", [], struct.pack("<d", 3.5)),
                                     "z": ("BF16", [0, 4], b"")}, b""),
        "valid_all_dtypes": st({d: (d, [2], b"\x01" * (2 * s)) for d, s in [
            ("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2),
            ("I8", 1), ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1)]}, b""),
    }
    for name, data in valid.items():
        write(os.path.join(FUZZ, name), data)
    os.makedirs(VALID, exist_ok=True)
    write(os.path.join(VALID, "tiny.safetensors"), valid["valid_all_dtypes"])
    print(f"{len(expected)} malformed cases, {len(SINGLE) + len(valid)} fuzz seeds")


if __name__ == "__main__":
    sys.exit(main())
