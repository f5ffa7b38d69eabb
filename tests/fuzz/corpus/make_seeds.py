#!/usr/bin/env python3
"""Writes the small seed corpora for the fuzz targets (run from any directory; standard library only).
The seeds are committed; rerun only to regenerate them."""
import gzip, json, os, random, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def put(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

# IDX: each element type, a 3-D image block, gzip (one and two members), and near-misses.
labels = idx(0x08, [10], bytes(range(10)))
images = idx(0x08, [2, 3, 3], bytes(i * 14 for i in range(18)))
put("idx", "labels_u8", labels)
put("idx", "images_u8", images)
put("idx", "i8", idx(0x09, [3], b"\xff\x00\x7f"))
put("idx", "i16", idx(0x0B, [2, 2], struct.pack(">4h", -2, 1, 300, -300)))
put("idx", "i32", idx(0x0C, [2], struct.pack(">2i", -5, 1 << 30)))
put("idx", "f32", idx(0x0D, [1, 1, 2, 1], struct.pack(">2f", 1.5, -0.25)))
put("idx", "f64", idx(0x0E, [1], struct.pack(">d", 3.0)))
put("idx", "images_gz", gzip.compress(images, mtime=0))
put("idx", "labels_gz_two_members", gzip.compress(labels[:7], mtime=0) + gzip.compress(labels[7:], mtime=0))
put("idx", "truncated", images[:-1])
put("idx", "trailing", labels + b"\x00")

# CSV: header with label, plain numbers, quotes/CRLF/BOM/blank lines, another separator, bad cells.
put("csv", "header_label", "\x09f1,f2,y\n0.1,0.2,1\n0.3,-4e2,0\n")
put("csv", "numbers", "\x00" + "1,2,3\n4,5,6\n7,8,9")
put("csv", "quoted_crlf", "\x01\xef\xbb\xbf\"a\",\"b \"\"q\"\"\"\r\n\r\n +1 , \"2\"\r\n3,4\r\n")
put("csv", "semicolon", "\x0c" + "x;y\n1.5;2\n")
put("csv", "ragged_and_bad", "\x02" + "1,2\n3\n4,x\n,nan\n")

# safetensors: empty, metadata only, mixed dtypes with a scalar and an empty tensor, escapes in names.
def st(entries, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data

put("safetensors", "empty", st([]))
put("safetensors", "metadata_only", st([], {"format": "pt", "epoch": "3"}))
put("safetensors", "mixed", st([
    ("w", "F32", [2, 3], struct.pack("<6f", *range(6))),
    ("step", "I64", [], struct.pack("<q", 42)),
    ("ids", "I32", [2], struct.pack("<2i", -1, 7)),
    ("none", "F32", [0, 4], b""),
    ("h", "BF16", [1], b"\x80\x3f"),
], {"note": "caf\u00e9"}))
put("safetensors", "escaped_name", st([("a\"\\\u00e9\U0001F600", "U8", [3], b"xyz")], pad=False))

# Hostile inputs of each kind in issue 14, at fuzz-input size: headers that claim much more than the file
# holds, files of another type, names with control bytes, CSV first rows that look like a header, underflow.
put("safetensors", "numbers_for_object", (lambda h: struct.pack("<Q", len(h)) + h)(b'{"w":[' + b"0," * 3990 + b'0]}'))
put("safetensors", "rank_many_zeros", (lambda h: struct.pack("<Q", len(h)) + h)(
    b'{"w":{"dtype":"F32","shape":[' + b"0," * 100 + b'0],"data_offsets":[0,0]}}'))
put("safetensors", "claims_gigabytes", (lambda h: struct.pack("<Q", len(h)) + h + b"\x00" * 16)(
    b'{"w":{"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]}}'))
put("safetensors", "pytorch_zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"archive/data.pkl" + bytes(48))
put("safetensors", "hdf5", b"\x89HDF\r\n\x1a\n" + bytes(32))
put("safetensors", "npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n")
put("safetensors", "nul_name", st([("fc1.weight\u0000.evil", "F32", [1], struct.pack("<f", float("nan")))]))
put("idx", "gzip_trailing_zeros", gzip.compress(idx(0x08, [4], b"\x01\x02\x03\x04"), mtime=0) +
    gzip.compress(bytes(4 << 20), mtime=0))
# incompressible, so a reader that reserves 1032 x the compressed size is caught by the fuzzers' heap bound
rng = random.Random(14)
noise = bytes(rng.randrange(256) for _ in range(4000))
put("idx", "gzip_claims_4gib", gzip.compress(idx(0x08, [65536, 65536], noise), mtime=0))
put("idx", "plain_claims_4gib", idx(0x08, [65536, 65536], bytes(64)))
put("idx", "zip_not_idx", b"PK\x03\x04" + bytes(28))
put("csv", "nan_first_row", "\x00" + "1,nan,3\n4,5,6\n")
put("csv", "empty_cell_first_row", "\x00" + "1,,3\n4,5,6\n")
put("csv", "underflow", "\x01" + "1e-50,-1e-400,1e-40\n1e50,2,3\n")
put("csv", "nul_cell", "\x00" + "a,b\n1,x\x00y\n")
put("csv", "gzip_as_csv", b"\x00" + gzip.compress(b"a,b\n1,2\n", mtime=0))
