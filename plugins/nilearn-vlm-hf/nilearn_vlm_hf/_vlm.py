"""Vision-language models from transformers: SigLIP (dual encoder) and BridgeTower (co-attention)."""

from __future__ import annotations

import numpy as np

from nilearn_vlm.adapters import Batch
from nilearn_vlm_hf._base import HFAdapterBase, Stream, Tap, standard_taps
from nilearn_vlm_hf._encoders import _PARAMS_DOC, _square

_FILLERS = ("gray", "black", "white")


class SiglipAdapter(HFAdapterBase):
    __doc__ = (
        """SigLIP dual encoder (``transformers.SiglipModel``).

    Two independent towers, like CLIP: sites ``vision.L.{attn_out,head,ffn,
    resid}`` over the patch tokens (SigLIP has no CLS token: ``cls`` pooling
    takes the first patch; prefer ``mean``) and ``text.L.{...}`` over the
    text tokens. A stimulus without an image gives only text sites and the
    other way round. The attention-pooling head of the vision tower is not
    a site.

    SigLIP was trained with texts padded to 64 tokens and no attention mask;
    this adapter pads to the longest text of the batch and passes the mask,
    so units do not depend on the batch (padding never counts).
"""
        + _PARAMS_DOC.replace("{config}", "A dict holds ``SiglipConfig`` arguments (``text_config``, ``vision_config``).")
        + """
    Examples
    --------
    >>> from nilearn_vlm_hf import SiglipAdapter
    >>> adapter = SiglipAdapter(pretrained="path/to/siglip-base-patch16-224")  # doctest: +SKIP
    """
    )

    name = "siglip"
    modalities = ("image", "text")

    def _build_model(self, p):
        from transformers import SiglipConfig, SiglipModel

        return self._from_source(SiglipModel, lambda cfg: SiglipConfig(**cfg), p)

    def _text_model(self):
        return self._model.text_model

    def _streams(self, model):
        def taps(layers):
            return [standard_taps(layer) for layer in layers]

        return [
            Stream("vision", ("image",), taps(model.vision_model.encoder.layers), tokens="patch tokens (no CLS)"),
            Stream(
                "text", ("text",), taps(model.text_model.encoder.layers), mask_of="text", tokens="text tokens, no padding"
            ),
        ]

    def _default_image_processor(self):
        from transformers import SiglipImageProcessor

        h, w = _square(self._model.config.vision_config.image_size)
        return SiglipImageProcessor(size={"height": h, "width": w})

    def _run(self, inputs, streams):
        if "vision" in streams:
            self._model.vision_model(pixel_values=inputs["pixel_values"])
        if "text" in streams:
            self._call(self._model.text_model, inputs["text"])


class BridgeTowerAdapter(HFAdapterBase):
    __doc__ = (
        """BridgeTower co-attention model (``transformers.BridgeTowerModel``), METER's descendant.

    Streams and sites, named as the METER adapter names them:

    - ``vision.L.{attn_out,ffn,resid}``: the CLIP-style vision tower (its
      ``nn.MultiheadAttention`` never calls its output projection as a
      module, so per-head ``head`` sites are not available there);
    - ``text.L.{attn_out,head,ffn,resid}``: the RoBERTa text tower;
    - ``cross_text.L.{self_attn_out,cross_attn_out,ffn,resid}`` and
      ``cross_image.L.{...}``: the co-attention fusion layers (text queries
      attending to the image, and the other way round).

    Only the uni-modal layers the model runs are listed. BridgeTower is
    paired: the fusion sites need an image and a text for every stimulus, so
    a batch without one modality needs an explicit filler
    (``missing_text=``/``missing_image=``) or raises ValueError; fillers also
    replace None entries of a batch. Uni-modal sites (``vision.*``,
    ``text.*``) only need their own modality: when no fusion site is asked
    for, the towers run alone (the same layers, as the full model runs them).

    Attention is ``"eager"``, the only kernel transformers 5 offers for
    BridgeTower. Its fusion self-attention is built with a causal flag that
    eager attention ignores, so the image fusion stream (which has no mask)
    stays bidirectional, as in METER; a test guards this.
"""
        + _PARAMS_DOC.replace(
            "{config}", "A dict holds ``BridgeTowerConfig`` arguments (``text_config``, ``vision_config``, ...)."
        )
        + """    missing_text : str, optional
        Text given to stimuli without one (for example ``""``).
    missing_image : {"gray", "black", "white"} or PIL image, optional
        Image given to stimuli without one (a uniform image of the model's size).

    Examples
    --------
    >>> from nilearn_vlm_hf import BridgeTowerAdapter
    >>> adapter = BridgeTowerAdapter(pretrained="path/to/bridgetower-base",
    ...                              missing_text="")  # doctest: +SKIP
    """
    )

    name = "bridgetower"
    modalities = ("image", "text")
    paired = True
    _EXTRA_DEFAULTS = {"missing_text": None, "missing_image": None}
    _default_attn = "eager"

    def _build_model(self, p):
        from transformers import BridgeTowerConfig, BridgeTowerModel

        mt, mi = p["missing_text"], p["missing_image"]
        if mt is not None and not isinstance(mt, str):
            raise TypeError(f"missing_text must be a str or None, got {type(mt).__name__}")
        if mi is not None and not hasattr(mi, "convert") and mi not in _FILLERS:
            raise ValueError(f"missing_image={mi!r} is not supported; give one of {_FILLERS} or a PIL image")
        return self._from_source(BridgeTowerModel, lambda cfg: BridgeTowerConfig(**cfg), p)

    def _text_model(self):
        return self._model.text_model

    def _streams(self, model):
        text_layers = model.text_model.encoder.layer
        blocks = model.vision_model.visual.transformer.resblocks
        n_run = min(len(blocks), len(text_layers))
        vision = [
            {
                "attn_out": Tap(b.attn, False, int(b.attn.embed_dim)),
                "ffn": Tap(b.mlp["c_proj"], True, int(b.mlp["c_proj"].in_features)),
                "resid": Tap(b, False, int(b.attn.embed_dim)),
            }
            for b in list(blocks)[:n_run]
        ]

        def fusion(layers):
            return [
                {
                    "self_attn_out": Tap(layer.attention.output.dense, False, int(layer.attention.output.dense.out_features)),
                    "cross_attn_out": Tap(
                        layer.crossattention.output.dense, False, int(layer.crossattention.output.dense.out_features)
                    ),
                    "ffn": Tap(layer.output.dense, True, int(layer.output.dense.in_features)),
                    "resid": Tap(layer, False, int(layer.output.dense.out_features)),
                }
                for layer in layers
            ]

        return [
            Stream("vision", ("image",), vision, seq_first=True, tokens="CLS and patch tokens"),
            Stream("text", ("text",), [standard_taps(x) for x in text_layers], mask_of="text", tokens="text tokens"),
            Stream(
                "cross_text", ("image", "text"), fusion(model.cross_modal_text_layers), mask_of="text",
                tokens="text tokens attending to the image",
            ),
            Stream(
                "cross_image", ("image", "text"), fusion(model.cross_modal_image_layers),
                tokens="image tokens attending to the text",
            ),
        ]

    def forward_links(self):
        """Links of BridgeTower's bridges, as ``BridgeTowerModel.forward`` runs them.

        With ``T`` text layers and ``F`` fusion layers, the encoders run their
        first ``s = T - F + 1`` layers, then fusion layer 0 reads text and
        vision layer ``s - 1``; fusion layer ``k >= 1`` of each stream reads
        layer ``s - 1 + k`` of its own encoder (the bridge) and layer
        ``k - 1`` of the other fusion stream. So the top ``F - 1`` encoder
        layers run beside the fusion layers: text layer ``s - 1 + k`` and
        fusion layer ``k - 1`` have the same depth, and every fusion layer is
        deeper than the encoder layers that feed it.
        """
        self.ensure_loaded()
        specs = self._stream_specs
        n_fusion = len(specs["cross_text"].layers)
        split = len(specs["text"].layers) - n_fusion + 1
        links = []
        for k in range(n_fusion):
            enc = split - 1 + k
            if k == 0:
                links += [((enc_stream, enc), (cross, 0)) for enc_stream in ("text", "vision")
                          for cross in ("cross_text", "cross_image")]
            else:
                links += [(("text", enc), ("cross_text", k)), (("vision", enc), ("cross_image", k)),
                          (("cross_image", k - 1), ("cross_text", k)), (("cross_text", k - 1), ("cross_image", k))]
        return links

    def _image_size(self):
        return _square(self._model.config.vision_config.image_size)

    def _default_image_processor(self):
        from transformers import BridgeTowerImageProcessor

        h, _ = self._image_size()
        return BridgeTowerImageProcessor(
            size={"shortest_edge": h}, crop_size={"shortest_edge": h}, do_center_crop=True, do_pad=False
        )

    def _complete(self, batch, streams=None):
        """Fill missing images/texts with the fillers, or raise.

        Fusion streams need both modalities for every stimulus; uni-modal
        streams only their own (their towers then run alone, as in the full
        model). ``streams=None`` (token masks) fills what it can.
        """
        p = self.model_params
        n = len(batch)
        images = batch.images if batch.images is not None else [None] * n
        texts = batch.texts if batch.texts is not None else [None] * n
        if streams is None:
            need = {m for m in ("image", "text") if m in batch.modalities}
        else:
            need = set()
            for stream in streams:
                need.update(self._stream_specs[stream].modalities)
        if "text" in need and any(t is None for t in texts):
            if p["missing_text"] is None:
                if streams is None:
                    need.discard("text")
                else:
                    raise ValueError(
                        "BridgeTower is a paired model and this batch lacks text for some stimuli; "
                        "pass missing_text= (for example '') to fill them, or ask for image sites only"
                    )
            texts = [p["missing_text"] if t is None else t for t in texts]
        if "image" in need and any(im is None for im in images):
            filler = p["missing_image"]
            if filler is None:
                if streams is None:
                    need.discard("image")
                else:
                    raise ValueError(
                        "BridgeTower is a paired model and this batch lacks an image for some "
                        "stimuli; pass missing_image= ('gray', 'black', 'white' or a PIL image) to "
                        "fill them, or ask for text sites only"
                    )
            elif isinstance(filler, str):
                from PIL import Image

                h, w = self._image_size()
                value = {"gray": 128, "black": 0, "white": 255}[filler]
                filler = Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8))
            images = [filler if im is None else im for im in images]
        if not need:
            return batch
        return Batch(images=images if "image" in need else None, texts=texts if "text" in need else None)

    def _run(self, inputs, streams):
        if streams & {"cross_text", "cross_image"}:
            text = inputs["text"]
            self._model(
                input_ids=text["input_ids"], attention_mask=text["attention_mask"], pixel_values=inputs["pixel_values"]
            )
            return
        if "text" in streams:  # the text tower alone: the same layers the full model runs
            text = inputs["text"]
            self._model.text_model(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
        if "vision" in streams:  # the vision tower alone, as BridgeTowerModel.forward runs it
            visual = self._model.vision_model.visual
            x = visual.forward_pre(inputs["pixel_values"])
            for block in list(visual.transformer.resblocks)[: len(self._stream_specs["vision"].layers)]:
                x = block(x)
