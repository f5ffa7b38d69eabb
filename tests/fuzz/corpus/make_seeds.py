#!/usr/bin/env python3
"""Writes the small seed corpora for the fuzz targets (run from any directory; standard library only).
The seeds are committed; rerun only to regenerate them."""
import gzip, json, os, struct

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
