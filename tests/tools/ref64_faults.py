#!/usr/bin/env python3
"""Float64 traces with a planted bug, made by ../shared/tools/ref64.py with one function swapped.

They stand in for a broken engine, so tests can prove that `plumb diff`'s default thresholds
catch each bug at the tap where it happens while passing llama.cpp's own rounding error. The
faults mirror plumb's PlantedFault (src/model/model.h):
  neox      RoPE rotates (i, i + d/2) pairs instead of (2i, 2i+1)        -> blk.0.q_rope
  noscale   attention scores not multiplied by 1/sqrt(head_dim)         -> blk.0.attn_out
  gqa       query head h reads KV head (h / group + 1) mod n_head_kv     -> blk.0.attn_out
  skip<L>   layer L's attention residual dropped (ffn_inp = attn_proj)   -> blk.L.ffn_inp
  q4k       Q4_K sub-block scale and min exchanged when unpacked         -> first tap using a Q4_K weight

Usage: ref64_faults.py SHARED_DIR MODEL.gguf TOKENS(comma-separated) OUT_DIR FAULT...
writes OUT_DIR/<fault>.gguf (p0.tokens, p0.logits, p0.trace.<tap>), "none" = no fault.
"""
import os
import sys

import numpy as np


def main():
    shared, model_path, tokens, out_dir, faults = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    sys.path.insert(0, os.path.join(shared, "tools"))
    import gguf
    import ref64

    clean_rope, clean_attention, clean_dequantize = ref64.rope, ref64.attention, ref64.dequantize

    def rope_neox(x, pos, m, freq_factors):
        half = m.rope_dim // 2
        inv_freq = m.rope_base ** (-2.0 * np.arange(half) / m.rope_dim)
        if freq_factors is not None:
            inv_freq = inv_freq / freq_factors
        ang = (pos / m.rope_factor)[:, None] * inv_freq[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., :half], x[..., half:2 * half]
        out = x.copy()
        out[..., :half] = x0 * cos - x1 * sin
        out[..., half:2 * half] = x0 * sin + x1 * cos
        return out

    def attention_gqa_off_by_one(q, k, v, scale):
        T, H, _ = q.shape
        n_kv = k.shape[1]
        group = H // n_kv
        future = np.triu(np.ones((T, T), dtype=bool), 1)
        out = np.empty((T, H, v.shape[2]))
        for h in range(H):
            kv = (h // group + 1) % n_kv
            s = (q[:, h] @ k[:, kv].T) * scale
            s[future] = -np.inf
            p = np.exp(s - s.max(axis=1, keepdims=True))
            out[:, h] = (p / p.sum(axis=1, keepdims=True)) @ v[:, kv]
        return out.reshape(T, H * v.shape[2])

    def dequantize_q4k_swapped(data, qtype):
        if qtype != gguf.GGMLQuantizationType.Q4_K:
            return clean_dequantize(data, qtype)
        # block: d, dmin (f16), scales[12], qs[128]. In the 12 bytes, bytes 0-3 hold scale j
        # (low 6 bits) and the high bits of scale j+4, bytes 4-7 the same for the mins, bytes
        # 8-11 the low nibbles of scale (low) and min (high) j+4: swap them all.
        raw = np.asarray(data, dtype=np.uint8)
        b = raw.reshape(-1, 144).copy()
        sc = b[:, 4:16].copy()
        sc[:, 0:4], sc[:, 4:8] = b[:, 8:12], b[:, 4:8]
        sc[:, 8:12] = ((b[:, 12:16] >> 4) | (b[:, 12:16] << 4)) & 0xFF
        b[:, 4:16] = sc
        return clean_dequantize(b.reshape(raw.shape), qtype)

    # Dequantizing is most of ref64's time: every fault but q4k reads the same weights, so keep
    # them across runs (keyed by the dequantizer in force).
    clean_weight = ref64.Model.weight
    cache = {}

    def cached_weight(self, name):
        key = (name, ref64.dequantize is clean_dequantize)
        if key not in cache:
            cache[key] = clean_weight(self, name)
        self.used.add(name)
        return cache[key]

    ref64.Model.weight = cached_weight

    def run(fault):
        ref64.rope, ref64.attention, ref64.dequantize = clean_rope, clean_attention, clean_dequantize
        skip_layer = int(fault[4:]) if fault.startswith("skip") else -1
        if fault == "neox":
            ref64.rope = rope_neox
        elif fault == "noscale":
            ref64.attention = lambda q, k, v, scale: clean_attention(q, k, v, 1.0)
        elif fault == "gqa":
            ref64.attention = attention_gqa_off_by_one
        elif fault == "q4k":
            ref64.dequantize = dequantize_q4k_swapped
        elif fault != "none" and skip_layer < 0:
            sys.exit(f"ref64_faults: unknown fault {fault}")
        model = ref64.Model(model_path)
        trace = {}

        def want(name):
            return True

        if skip_layer >= 0:
            # The block computes x = tap("ffn_inp", x + attn_proj) and goes on with what the tap
            # returns: returning attn_proj alone there drops the residual.
            clean_block = ref64.block
            layer = [0]

            def block(m, L, x, ff, tap):
                il = layer[0]
                layer[0] += 1
                if il != skip_layer:
                    return clean_block(m, L, x, ff, tap)
                proj = {}

                def tap_skip(name, a):
                    if name == "attn_proj":
                        proj["a"] = a
                    if name == "ffn_inp":
                        a = proj["a"]
                    return tap(name, a)
                return clean_block(m, L, x, ff, tap_skip)

            ref64.block = block
            try:
                logits, trace = ref64.forward(model, [ids], want)
            finally:
                ref64.block = clean_block
        else:
            logits, trace = ref64.forward(model, [ids], want)
        return logits[0], trace

    ids = [int(t) for t in tokens.split(",") if t]
    for fault in faults:
        logits, trace = run(fault)
        w = gguf.GGUFWriter(os.path.join(out_dir, fault + ".gguf"), "ref64")
        w.add_tensor("p0.tokens", np.asarray(ids, dtype=np.int32))
        w.add_tensor("p0.logits", np.ascontiguousarray(logits, dtype=np.float32))
        for name, a in trace.items():
            w.add_tensor("p0.trace." + name, np.ascontiguousarray(a, dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


if __name__ == "__main__":
    main()
