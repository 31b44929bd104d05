#!/usr/bin/env python3
"""A stand-in for someone else's engine, for docs/TRACE.md's worked example ("Anyone's dumps").

It is ../shared/tools/ref64.py (the float64 forward pass), dumping its intermediates through
tools/plumb_taps.py under its own names and layouts, the way a foreign engine would:
  names     Meta-Llama style (layers.{i}.attention.wq, ...; tests/tools/foreign_engine.map maps
            them to plumb's taps)
  layouts   q/k/v projections stored [width][tokens] (transposed); q/k after RoPE and the
            attention output stored per head [heads][tokens][head_dim]; the rest [tokens][width]
  --bug rope-offset   a planted bug: RoPE positions start at 1 instead of 0. Attention sees only
                      relative positions, so nothing after RoPE changes: only q_rot / k_rot
                      (plumb's blk.0.q_rope / k_rope) show it.

Usage: foreign_engine.py SHARED_DIR MODEL.gguf TOKENS(comma-separated) OUT... [--bug rope-offset]
Every OUT gets the same tensors: a directory (of .npy), x.npz (deflated), x.stored.npz or
x.safetensors.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args = sys.argv[1:]
    bug = None
    if "--bug" in args:
        i = args.index("--bug")
        bug = args[i + 1]
        del args[i:i + 2]
    shared, model_path, tokens, outs = args[0], args[1], args[2], args[3:]
    sys.path.insert(0, os.path.join(shared, "tools"))
    sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
    import ref64
    from plumb_taps import TapWriter

    if bug == "rope-offset":
        clean_rope = ref64.rope
        ref64.rope = lambda x, pos, m, ff: clean_rope(x, pos + 1, m, ff)
    elif bug is not None:
        sys.exit("foreign_engine: unknown bug " + bug)

    ids = [int(t) for t in tokens.split(",") if t]
    model = ref64.Model(model_path)
    logits, trace = ref64.forward(model, [ids], lambda name: True)
    T = len(ids)

    def per_head(a, heads):  # (T, heads * dim) -> (heads, T, dim)
        return a.reshape(T, heads, -1).transpose(1, 0, 2)

    names = {"inp_embd": ("tok_embeddings", None), "result_norm": ("norm", None), "logits": ("output", None)}
    layer_names = {
        "attn_norm": ("attention_norm", None),
        "q": ("attention.wq", "T"), "k": ("attention.wk", "T"), "v": ("attention.wv", "T"),
        "q_rope": ("attention.q_rot", model.n_head), "k_rope": ("attention.k_rot", model.n_head_kv),
        "attn_out": ("attention.heads", model.n_head), "attn_proj": ("attention.wo", None),
        "ffn_inp": ("h", None), "ffn_norm": ("ffn_norm", None),
        "ffn_gate": ("feed_forward.w1", None), "ffn_up": ("feed_forward.w3", None),
        "ffn_act": ("feed_forward.act", None), "ffn_out": ("feed_forward.w2", None), "out": ("out", None),
    }
    arrays = []
    for tap, a in trace.items():
        if tap.startswith("blk."):
            _, layer, op = tap.split(".", 2)
            name, layout = layer_names[op]
            name = "layers.%s.%s" % (layer, name)
        else:
            name, layout = names[tap]
        if layout == "T":
            a = a.T
        elif layout is not None:
            a = per_head(a, layout)
        arrays.append((name, np.ascontiguousarray(a, dtype=np.float32)))
    for out in outs:
        with TapWriter(out, compress=not out.endswith(".stored.npz")) as w:
            w.tokens(ids)
            for name, a in arrays:
                w.tap(name, a)


if __name__ == "__main__":
    main()
