"""A one-layer adapter computing colour statistics of image patches and
character statistics of words."""

import numpy as np

from nilearn_vlm.adapters import BaseAdapter, Site, pool


class ColorStatsAdapter(BaseAdapter):
    """Colour statistics of a 4 x 4 patch grid; character statistics of words.

    Parameters
    ----------
    image_size : int, default=32
        Images are resized to this square size before cutting patches.
    """

    name = "colorstats"
    version = "1"
    modalities = ("image", "text")

    def load(self, **model_params):
        self.model_params.update(model_params)
        self.model_params.setdefault("image_size", 32)
        self._loaded = True
        return self

    def sites(self):
        return [
            # 3 channels x (mean, std, min, max) per patch token
            Site("vision", 0, "ffn", 12, ("image",), "16 patches + a whole-image token"),
            # letters, digits, upper case, vowels, length per word token
            Site("text", 0, "ffn", 5, ("text",), "words"),
        ]

    def preprocessing(self):
        return {"image_size": self.model_params["image_size"]}

    def token_masks(self, batch):
        out = {}
        if batch.images is not None:
            out["vision"] = None
        if batch.texts is not None:
            out["text"] = self._words(batch.texts)[1]
        return out

    def _patches(self, images):
        size = self.model_params["image_size"]
        step = size // 4
        tokens = []
        for img in images:
            a = np.asarray(img.convert("RGB").resize((size, size)), dtype=np.float32) / 255
            p = a[: 4 * step, : 4 * step].reshape(4, step, 4, step, 3).transpose(0, 2, 1, 3, 4)
            p = p.reshape(16, -1, 3)
            whole = a.reshape(1, -1, 3)
            feats = [np.concatenate([t.mean(1), t.std(1), t.min(1), t.max(1)], axis=1) for t in (whole, p)]
            tokens.append(np.vstack(feats))
        return np.stack(tokens).astype(np.float32)

    @staticmethod
    def _words(texts):
        words = [str(t).split() or [""] for t in texts]
        length = max(len(w) for w in words)
        x = np.zeros((len(texts), length, 5), dtype=np.float32)
        mask = np.zeros((len(texts), length), dtype=bool)
        for i, ws in enumerate(words):
            for j, w in enumerate(ws):
                x[i, j] = [
                    sum(c.isalpha() for c in w),
                    sum(c.isdigit() for c in w),
                    sum(c.isupper() for c in w),
                    sum(c.lower() in "aeiou" for c in w),
                    len(w),
                ]
                mask[i, j] = True
        return x, mask

    def extract(self, batch, sites, pooling="mean"):
        self.ensure_loaded()
        chosen, rules = self._check_request(batch, sites, pooling)
        out = {}
        for site in chosen:
            rule = rules[site.stream]
            if site.stream == "vision":
                if rule == "eot":
                    raise ValueError("'eot' pooling applies to text; use 'cls' or 'mean' for vision")
                x, mask = self._patches(batch.images), None
            else:
                x, mask = self._words(batch.texts)
            out[site.name] = np.asarray(pool(x, mask, rule), dtype=np.float32)
        return out
