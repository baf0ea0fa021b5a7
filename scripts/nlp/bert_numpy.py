"""A plain numpy forward pass of a BERT sentence encoder, straight from model.safetensors.

Written independently of export_minilm_onnx.py (einsum attention, no shared helpers) so that it
can check the ONNX export: if both agree, the graph wiring is right. It follows the
sentence-transformers pipeline of all-MiniLM-L6-v2: BERT -> mean pooling over real tokens ->
L2 normalisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


def _erf(x: np.ndarray) -> np.ndarray:
    # numpy has no erf; math.erf per element is exact and fast enough for a reference.
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(x)


class NumpyBert:
    def __init__(self, model_dir: Path) -> None:
        self.cfg = json.loads((Path(model_dir) / "config.json").read_text())
        raw = load_file(str(Path(model_dir) / "model.safetensors"))
        # float64 throughout: the reference should carry less rounding error than what it checks.
        self.w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in raw.items()}

    def _ln(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + self.cfg["layer_norm_eps"])
        return y * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _lin(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def last_hidden_state(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        w, cfg = self.w, self.cfg
        b, s = ids.shape
        nh = cfg["num_attention_heads"]
        hd = cfg["hidden_size"] // nh
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(s)][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        neg = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}"

            def heads(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, s, nh, hd)

            q = heads(self._lin(x, p + ".attention.self.query"))
            k = heads(self._lin(x, p + ".attention.self.key"))
            v = heads(self._lin(x, p + ".attention.self.value"))
            sc = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(hd) + neg
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            pr = sc / sc.sum(-1, keepdims=True)
            ctx = np.einsum("bhqk,bkhd->bqhd", pr, v).reshape(b, s, nh * hd)
            x = self._ln(self._lin(ctx, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
            h = self._lin(x, p + ".intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = self._ln(self._lin(h, p + ".output.dense") + x, p + ".output.LayerNorm")
        return x

    def sentence_embedding(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        return mean_pool_normalize(self.last_hidden_state(ids, mask, types), mask)


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(hidden.dtype)
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)
