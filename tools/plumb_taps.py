#!/usr/bin/env python3
"""plumb_taps: write your engine's intermediate tensors so `plumb diff` can find where it diverges.

One file, no dependencies (the standard library only): copy it into your project.

    from plumb_taps import TapWriter

    with TapWriter("dump/") as taps:          # a directory of .npy files
        taps.tokens(token_ids)                # the prompt's token ids (int32 "tokens")
        taps.tap("layers.0.attention.wq", q)  # any name; plumb diff --map maps it to a tap
        ...

The path decides the format: a directory (made if missing) of <name>.npy, "dump.npz" (zip,
deflated; TapWriter("dump.npz", compress=False) stores), or "dump.safetensors". Arrays are
NumPy arrays (float16/32/64 kept, others written as float32), PyTorch tensors, Python
array.array('f'/'d'), or nested lists of numbers; give shape= for a flat sequence. Token ids
are written as int32.

Then:  plumb diff dump/ plumb-trace.gguf --map my-engine.map
(docs/TRACE.md, "Anyone's dumps", has the map format and a worked example.)
"""
import array
import json
import os
import struct
import zipfile

__all__ = ["TapWriter", "npy_bytes"]


def _flatten(x):
    """(values, shape) of nested lists/tuples of numbers."""
    shape, probe = [], x
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    values = []

    def walk(v, depth):
        if depth == len(shape):
            values.append(v)
            return
        if not isinstance(v, (list, tuple)) or len(v) != shape[depth]:
            raise ValueError("plumb_taps: ragged nested lists (expected shape %s)" % (tuple(shape),))
        for item in v:
            walk(item, depth + 1)

    walk(x, 0)
    return values, shape


def _as_raw(x, shape=None, integer=False):
    """(descr, shape tuple, little-endian bytes) of an array-like."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    if hasattr(x, "dtype") and hasattr(x, "tobytes") and hasattr(x, "shape"):  # numpy
        kind, size = x.dtype.kind, x.dtype.itemsize
        if integer:
            descr = "<i4"
        elif kind == "f" and size in (2, 4, 8):
            descr = "<f%d" % size
        else:
            descr = "<f4"
        data = x.astype(descr).tobytes(order="C")  # astype copies into C order, little-endian
        return descr, tuple(int(d) for d in (shape or x.shape)), data
    if isinstance(x, array.array):
        values, dims = list(x), [len(x)]
    else:
        values, dims = _flatten(x if isinstance(x, (list, tuple)) else list(x))
    if shape is not None:
        dims = [int(d) for d in shape]
    n = 1
    for d in dims:
        n *= d
    if n != len(values):
        raise ValueError("plumb_taps: shape %s needs %d values, got %d" % (tuple(dims), n, len(values)))
    if integer:
        return "<i4", tuple(dims), struct.pack("<%di" % n, *[int(v) for v in values])
    return "<f4", tuple(dims), struct.pack("<%df" % n, *[float(v) for v in values])


def npy_bytes(descr, shape, data):
    """A .npy file (format 1.0) holding `data` (C order) of dtype `descr` and `shape`."""
    dims = "(%s)" % ("".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, dims)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data


_SAFETENSORS = {"<f2": "F16", "<f4": "F32", "<f8": "F64", "<i4": "I32"}


class TapWriter:
    def __init__(self, path, compress=True):
        self.path = str(path)
        self.compress = compress
        self.arrays = []  # (name, descr, shape, data) for .npz / .safetensors
        self.names = set()
        if self.path.endswith(".npz"):
            self.format = "npz"
        elif self.path.endswith(".safetensors"):
            self.format = "safetensors"
        else:
            self.format = "npy"
            os.makedirs(self.path, exist_ok=True)

    def tap(self, name, values, shape=None):
        """Write one array under `name` (any name without '/'; map it with plumb diff --map)."""
        self._add(name, *_as_raw(values, shape))

    def tokens(self, ids):
        """The prompt's token ids, as int32 'tokens' (plumb diff checks both sides ran the same)."""
        self._add("tokens", *_as_raw(ids, None, integer=True))

    def _add(self, name, descr, shape, data):
        if "/" in name or name in self.names:
            raise ValueError("plumb_taps: bad or repeated name %r" % name)
        self.names.add(name)
        if self.format == "npy":
            tmp = os.path.join(self.path, name + ".npy.tmp")
            with open(tmp, "wb") as f:
                f.write(npy_bytes(descr, shape, data))
            os.replace(tmp, os.path.join(self.path, name + ".npy"))
        else:
            self.arrays.append((name, descr, shape, data))

    def close(self):
        if self.format == "npz":
            method = zipfile.ZIP_DEFLATED if self.compress else zipfile.ZIP_STORED
            with zipfile.ZipFile(self.path, "w", method) as z:
                for name, descr, shape, data in self.arrays:
                    z.writestr(name + ".npy", npy_bytes(descr, shape, data))
        elif self.format == "safetensors":
            header, offset = {}, 0
            for name, descr, shape, data in self.arrays:
                header[name] = {"dtype": _SAFETENSORS[descr], "shape": list(shape),
                                "data_offsets": [offset, offset + len(data)]}
                offset += len(data)
            text = json.dumps(header, separators=(",", ":")).encode()
            text += b" " * (-len(text) % 8)
            with open(self.path, "wb") as f:
                f.write(struct.pack("<Q", len(text)) + text)
                for _, _, _, data in self.arrays:
                    f.write(data)
        self.arrays = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
