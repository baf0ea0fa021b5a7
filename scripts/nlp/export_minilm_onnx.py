#!/usr/bin/env python3
"""Export a BERT sentence encoder (all-MiniLM-L6-v2) from safetensors to ONNX without torch.

Only numpy, onnx and safetensors are used: the encoder is written out node by node with the
standard ONNX ops (opset 17), weights pre-transposed so every dense layer is one MatMul + Add.
ONNX Runtime fuses LayerNorm/GELU/attention patterns itself at load time, and any ONNX runtime
(tract included) can run the file because no contrib op is used.

Graph interface (the one of the usual Hugging Face export, so other exports of the same model,
e.g. the int8 one, plug in unchanged):
  inputs  input_ids, attention_mask, token_type_ids: int64 [batch, sequence]
  output  last_hidden_state: float32 [batch, sequence, hidden]
Mean pooling and L2 normalisation are done by the caller (crates/nlp, in Rust).

The output file is deterministic: fixed node and tensor names, no timestamps, so the same
inputs always give the same bytes (scripts/fetch-model.sh checks its sha256).

Usage: export_minilm_onnx.py MODEL_DIR OUT.onnx
  MODEL_DIR holds config.json and model.safetensors.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17
# Added to attention scores of padding positions; exp() of it underflows to exactly 0.
MASK_NEG = -10000.0


class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const_i64(self, name: str, values: list[int]) -> str:
        return self.init(name, np.array(values, dtype=np.int64))

    def const_f32(self, name: str, value: float) -> str:
        return self.init(name, np.array(value, dtype=np.float32))

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        self._n += 1
        out = out or f"t{self._n}_{op_type.lower()}"
        self.nodes.append(
            helper.make_node(op_type, inputs, [out], name=f"n{self._n}_{op_type}", **attrs)
        )
        return out


def layer_norm(g: GraphBuilder, x: str, w: np.ndarray, b: np.ndarray, prefix: str, eps: float) -> str:
    return g.op(
        "LayerNormalization",
        [x, g.init(f"{prefix}.weight", w), g.init(f"{prefix}.bias", b)],
        axis=-1,
        epsilon=eps,
    )


def dense(g: GraphBuilder, x: str, w: np.ndarray, b: np.ndarray, prefix: str) -> str:
    # torch Linear stores [out, in]; store W^T so the node is x @ W^T.
    y = g.op("MatMul", [x, g.init(f"{prefix}.weight_t", w.T.astype(np.float32))])
    return g.op("Add", [y, g.init(f"{prefix}.bias", b)])


def build(model_dir: Path) -> onnx.ModelProto:
    cfg = json.loads((model_dir / "config.json").read_text())
    w = load_file(str(model_dir / "model.safetensors"))
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    head_dim = hidden // heads
    eps = cfg["layer_norm_eps"]
    if cfg.get("hidden_act") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise SystemExit("only BERT with exact GELU and absolute positions is supported")

    def p(name: str) -> np.ndarray:
        # Some checkpoints prefix every key with "bert.".
        return w[name] if name in w else w["bert." + name]

    g = GraphBuilder()
    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"

    # Embeddings: word + position[0:seq] + token type, then LayerNorm.
    word = g.op("Gather", [g.init("embeddings.word", p("embeddings.word_embeddings.weight")), ids], axis=0)
    shape = g.op("Shape", [ids])
    seq_len = g.op("Gather", [shape, g.const_i64("one_idx", [1])], axis=0)
    pos_table = g.init("embeddings.position", p("embeddings.position_embeddings.weight"))
    pos = g.op("Slice", [pos_table, g.const_i64("zero_1d", [0]), seq_len, g.const_i64("zero_axis", [0])])
    typ = g.op("Gather", [g.init("embeddings.token_type", p("embeddings.token_type_embeddings.weight")), types], axis=0)
    x = g.op("Add", [g.op("Add", [word, pos]), typ])
    x = layer_norm(g, x, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"), "embeddings.ln", eps)

    # Additive attention bias [batch, 1, 1, seq]: 0 for tokens, MASK_NEG for padding.
    maskf = g.op("Cast", [mask], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const_f32("one_f", 1.0), maskf])
    bias = g.op("Mul", [inv, g.const_f32("mask_neg", MASK_NEG)])
    bias = g.op("Unsqueeze", [bias, g.const_i64("axes_1_2", [1, 2])])

    split_shape = g.const_i64("split_heads_shape", [0, 0, heads, head_dim])
    merge_shape = g.const_i64("merge_heads_shape", [0, 0, hidden])
    scale = g.const_f32("attn_scale", 1.0 / math.sqrt(head_dim))
    sqrt_half = g.const_f32("inv_sqrt2", 1.0 / math.sqrt(2.0))
    half = g.const_f32("half", 0.5)
    one = "one_f"

    for i in range(cfg["num_hidden_layers"]):
        pre = f"encoder.layer.{i}"
        q = dense(g, x, p(f"{pre}.attention.self.query.weight"), p(f"{pre}.attention.self.query.bias"), f"l{i}.q")
        k = dense(g, x, p(f"{pre}.attention.self.key.weight"), p(f"{pre}.attention.self.key.bias"), f"l{i}.k")
        v = dense(g, x, p(f"{pre}.attention.self.value.weight"), p(f"{pre}.attention.self.value.bias"), f"l{i}.v")
        q = g.op("Transpose", [g.op("Reshape", [q, split_shape])], perm=[0, 2, 1, 3])  # [B,H,S,D]
        k = g.op("Transpose", [g.op("Reshape", [k, split_shape])], perm=[0, 2, 3, 1])  # [B,H,D,S]
        v = g.op("Transpose", [g.op("Reshape", [v, split_shape])], perm=[0, 2, 1, 3])  # [B,H,S,D]
        scores = g.op("Mul", [g.op("MatMul", [q, k]), scale])
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
        ctx = g.op("MatMul", [probs, v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = dense(g, ctx, p(f"{pre}.attention.output.dense.weight"), p(f"{pre}.attention.output.dense.bias"), f"l{i}.attn_out")
        x = layer_norm(
            g, g.op("Add", [attn, x]),
            p(f"{pre}.attention.output.LayerNorm.weight"), p(f"{pre}.attention.output.LayerNorm.bias"),
            f"l{i}.attn_ln", eps,
        )
        h = dense(g, x, p(f"{pre}.intermediate.dense.weight"), p(f"{pre}.intermediate.dense.bias"), f"l{i}.inter")
        # Exact GELU, as BERT was trained: 0.5 * h * (1 + erf(h / sqrt(2))).
        erf = g.op("Erf", [g.op("Mul", [h, sqrt_half])])
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [erf, one])])
        out = dense(g, h, p(f"{pre}.output.dense.weight"), p(f"{pre}.output.dense.bias"), f"l{i}.out")
        x = layer_norm(
            g, g.op("Add", [out, x]),
            p(f"{pre}.output.LayerNorm.weight"), p(f"{pre}.output.LayerNorm.bias"),
            f"l{i}.out_ln", eps,
        )

    g.op("Identity", [x], out="last_hidden_state")

    def io(name: str, elem: int, dims: list) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem, dims)

    graph = helper.make_graph(
        g.nodes,
        "bert_encoder",
        [io(n, TensorProto.INT64, ["batch", "sequence"]) for n in (ids, mask, types)],
        [io("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="reviews-nlp/export_minilm_onnx.py",
        producer_version="1",
    )
    # Pin the IR version so a newer onnx package does not change the bytes or the runtimes it loads in.
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    model = build(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    tmp.write_bytes(model.SerializeToString(deterministic=True))
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(model.graph.node)} nodes)")


if __name__ == "__main__":
    main()
