"""A small NumPy transformer adapter for tests and examples (no torch)."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from nilearn_vlm.adapters import BaseAdapter, Site, pool
from nilearn_vlm.units import site_name


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


class ToyAdapter(BaseAdapter):
    """Two-tower toy transformer written in NumPy, with random weights.

    It has the sites of a real dual-encoder (``vision.L.{attn_out,head,ffn,
    resid}`` and ``text.L.{...}``), pads text and masks the padding, so the
    extraction driver, the cache and the pooling rules can be tested without
    torch. Images are cut into a 4 x 4 grid of patches plus a CLS token; words
    are hashed into a vocabulary, between start and end tokens.

    Parameters
    ----------
    width : int, default=16
        Residual width (units of ``attn_out``, ``head`` and ``resid``).
    n_layers : int, default=2
        Layers per tower.
    n_heads : int, default=2
    ffn_width : int, default=32
    seed : int, default=0
        Seed of the random weights.

    Examples
    --------
    >>> from nilearn_vlm.adapters import Batch
    >>> adapter = ToyAdapter(width=8, n_layers=1)
    >>> out = adapter.extract(Batch(texts=["a cat"]), ["text.0.ffn"], "mean")
    >>> out["text.0.ffn"].shape
    (1, 32)
    """

    name = "toy"
    version = "1"
    modalities = ("image", "text")

    _DEFAULTS = {"width": 16, "n_layers": 2, "n_heads": 2, "ffn_width": 32, "seed": 0, "vocab": 97}

    def load(self, **model_params):
        self.model_params.update(model_params)
        for key, value in self._DEFAULTS.items():
            self.model_params.setdefault(key, value)
        p = self.model_params
        unknown = set(p) - set(self._DEFAULTS)
        if unknown:
            raise TypeError(f"unknown ToyAdapter parameters {sorted(unknown)}; use {sorted(self._DEFAULTS)}")
        if p["width"] % p["n_heads"]:
            raise ValueError("width must be a multiple of n_heads")
        rng = np.random.default_rng(p["seed"])
        d, f = p["width"], p["ffn_width"]
        self._w = {}
        for stream in ("vision", "text"):
            self._w[stream] = [
                {
                    "qkv": rng.standard_normal((3, d, d)) / np.sqrt(d),
                    "o": rng.standard_normal((d, d)) / np.sqrt(d),
                    "w1": rng.standard_normal((d, f)) / np.sqrt(d),
                    "w2": rng.standard_normal((f, d)) / np.sqrt(f),
                }
                for _ in range(p["n_layers"])
            ]
        self._patch_proj = rng.standard_normal((3 * 64, d)) / 8.0
        self._vocab = rng.standard_normal((p["vocab"] + 2, d))
        self._loaded = True
        return self

    def sites(self):
        self.ensure_loaded()
        p = self.model_params
        out = []
        for stream, modality in (("vision", "image"), ("text", "text")):
            for layer in range(p["n_layers"]):
                for kind, width in (
                    ("attn_out", p["width"]),
                    ("head", p["width"]),
                    ("ffn", p["ffn_width"]),
                    ("resid", p["width"]),
                ):
                    out.append(Site(stream, layer, kind, width, (modality,), f"{stream} tokens"))
        return out

    def weights_digest(self):
        self.ensure_loaded()
        h = hashlib.sha256()
        for stream in ("vision", "text"):
            for layer in self._w[stream]:
                for key in sorted(layer):
                    h.update(np.ascontiguousarray(layer[key]).tobytes())
        return h.hexdigest()[:16]

    def preprocessing(self):
        return {"image": "resize 32x32 bilinear, 4x4 patches of 8x8, /255", "text": "hashed words"}

    # -- inputs ----------------------------------------------------------
    def _embed(self, batch, stream):
        if stream == "vision":
            tokens = []
            for img in batch.images:
                arr = np.asarray(img.convert("RGB").resize((32, 32)), dtype=np.float64) / 255.0
                patches = arr.reshape(4, 8, 4, 8, 3).transpose(0, 2, 1, 3, 4).reshape(16, -1)
                emb = patches @ self._patch_proj
                tokens.append(np.vstack([emb.mean(axis=0, keepdims=True), emb]))
            return np.stack(tokens), None
        vocab = self.model_params["vocab"]
        ids = [
            [vocab] + [zlib.crc32(w.lower().encode()) % vocab for w in str(t).split()] + [vocab + 1]
            for t in batch.texts
        ]
        length = max(len(i) for i in ids)
        x = np.zeros((len(ids), length, self.model_params["width"]))
        mask = np.zeros((len(ids), length), dtype=bool)
        for k, seq in enumerate(ids):
            x[k, : len(seq)] = self._vocab[seq]
            mask[k, : len(seq)] = True
        return x, mask

    def token_masks(self, batch):
        self.ensure_loaded()
        out = {}
        if batch.images is not None:
            out["vision"] = None
        if batch.texts is not None:
            out["text"] = self._embed(batch, "text")[1]
        return out

    # -- forward ---------------------------------------------------------
    def extract(self, batch, sites, pooling="mean"):
        self.ensure_loaded()
        chosen, rules = self._check_request(batch, sites, pooling)
        wanted = {s.name for s in chosen}
        out = {}
        for stream in sorted({s.stream for s in chosen}):
            x, mask = self._embed(batch, stream)
            rule = rules[stream]
            if rule == "eot" and stream == "vision":
                raise ValueError("'eot' pooling applies to text; use 'cls' or 'mean' for vision")
            n_heads = self.model_params["n_heads"]
            for layer, w in enumerate(self._w[stream]):
                n, t, d = x.shape
                q, k, v = (x @ w["qkv"][i] for i in range(3))
                dh = d // n_heads
                q, k, v = (a.reshape(n, t, n_heads, dh).transpose(0, 2, 1, 3) for a in (q, k, v))
                scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh)
                if mask is not None:
                    scores = np.where(mask[:, None, None, :], scores, -1e9)
                heads = (_softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
                attn = heads @ w["o"]
                h = x + attn
                ffn = np.tanh(h @ w["w1"])
                x = h + ffn @ w["w2"]
                for kind, value in (("attn_out", attn), ("head", heads), ("ffn", ffn), ("resid", x)):
                    name = site_name(stream, layer, kind)
                    if name in wanted:
                        out[name] = np.asarray(pool(value, mask, rule), dtype=np.float32)
        return {s.name: out[s.name] for s in chosen}
