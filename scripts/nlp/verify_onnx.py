#!/usr/bin/env python3
"""Check an exported encoder against an independent numpy forward pass, run by ONNX Runtime.

Usage: verify_onnx.py MODEL_DIR SAFETENSORS_DIR [OTHER.onnx ...]
  MODEL_DIR        holds model.onnx and tokenizer.json (what the Rust crate loads)
  SAFETENSORS_DIR  holds model.safetensors and config.json (the source weights)
  OTHER.onnx       further exports of the same model (e.g. the int8 one), compared by cosine

Exits non-zero when the fp32 export differs from the reference by more than 1e-4 on any
embedding dimension. Texts of different lengths are batched together so padding is exercised.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bert_numpy import NumpyBert, mean_pool_normalize  # noqa: E402

TEXTS = [
    "Arrived late and the box was crushed.",
    "Great value for the price.",
    "The customer service team never answered my emails, and when they finally did, they refused a refund.",
    "ok",
    "Très bon produit, je recommande.",
]
TOLERANCE = 1e-4


def encode(tok: Tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    tok.no_truncation()
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # batch-longest
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


def run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (hidden,) = sess.run(["last_hidden_state"], feeds)
    return mean_pool_normalize(hidden.astype(np.float64), feeds["attention_mask"])


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    model_dir, st_dir = Path(sys.argv[1]), Path(sys.argv[2])
    feeds = encode(Tokenizer.from_file(str(model_dir / "tokenizer.json")), TEXTS)
    print(f"verify: {len(TEXTS)} texts, padded batch shape {feeds['input_ids'].shape}")

    ref = NumpyBert(st_dir).sentence_embedding(feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
    got = run(model_dir / "model.onnx", feeds)
    diff = float(np.abs(got - ref).max())
    cos = float((got * ref).sum(-1).min())
    print(f"verify: model.onnx vs numpy reference: max abs diff {diff:.2e}, min cosine {cos:.8f}")
    ok = diff <= TOLERANCE

    for other in sys.argv[3:]:
        emb = run(Path(other), feeds)
        c = (emb * ref).sum(-1)
        print(f"verify: {other} vs numpy reference: min cosine {c.min():.5f}, mean {c.mean():.5f}")

    if not ok:
        raise SystemExit(f"verify: FAILED, max abs diff {diff:.2e} > {TOLERANCE}")
    print("verify: OK")


if __name__ == "__main__":
    main()
