"""Unimodal Hugging Face encoders: text (BERT, RoBERTa, MiniLM, ...) and vision (ViT, DINO, ...)."""

from __future__ import annotations

from nilearn_vlm_hf._base import HFAdapterBase, Stream, find_layer_list

_PARAMS_DOC = """
    Parameters
    ----------
    pretrained : str or path-like, optional
        A Hugging Face model id (``"bert-base-uncased"``) or a local checkpoint
        folder (``config.json`` + ``model.safetensors``, what ``save_pretrained``
        writes). A folder is always read with ``local_files_only=True``.
    config : dict or transformers config, optional
        Architecture for random weights, used when ``pretrained`` is None.
        {config}
    seed : int, default=0
        Seed of the random weights (``config=`` only).
    tokenizer : str, path-like or tokenizer, optional
        Tokenizer folder, id or object; defaults to ``pretrained``. Required
        with ``config=`` (random weights have no vocabulary files).
    image_processor : str, path-like or image processor, optional
        Defaults to the processor saved with ``pretrained``; else one built
        from the model config (resize to ``image_size``, mean/std 0.5).
    local_files_only : bool, optional
        Default: True for a folder, False for an id (set ``HF_HUB_OFFLINE=1`` to
        forbid the network).
    revision : str, optional
        Hub revision of an id.
    device : str, default="cpu"
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
    attn_implementation : str, optional
        transformers attention kernel; default ``"sdpa"``.
    max_length : int, optional
        Longest text in tokens (longer texts are truncated); default: the
        model's position limit.
"""


_AUTO_CONFIG_DOC = 'A dict needs ``"model_type"`` (``{"model_type": "bert", ...}``).'


def _auto_config(cfg):
    from transformers import AutoConfig

    cfg = dict(cfg)
    model_type = cfg.pop("model_type", None)
    if model_type is None:
        raise ValueError(
            "config= as a dict needs a 'model_type' key (for example 'bert', 'roberta', "
            "'vit', 'dinov2') so that transformers knows the architecture"
        )
    return AutoConfig.for_model(model_type, **cfg)


class _AutoEncoder(HFAdapterBase):
    def _build_model(self, p):
        from transformers import AutoModel

        return self._from_source(AutoModel, _auto_config, p)


class HFTextAdapter(_AutoEncoder):
    __doc__ = (
        """Text encoders from Hugging Face (BERT, RoBERTa, MiniLM, DistilBERT, MPNet, ...).

    The model is loaded with ``transformers.AutoModel``. One stream, ``text``;
    per layer ``L`` the sites ``text.L.attn_out`` (attention output after the
    output projection, before the residual add), ``text.L.head`` (per-head
    context before the output projection, head-major), ``text.L.ffn`` (FFN
    units after the activation) and ``text.L.resid`` (layer output). Tokens
    include the special tokens (``[CLS]``/``<s>`` first, ``[SEP]``/``</s>``
    last, so ``cls`` and ``eot`` pooling pick them); padding never counts.
"""
        + _PARAMS_DOC.replace("{config}", _AUTO_CONFIG_DOC)
        + """
    Examples
    --------
    >>> from nilearn_vlm.adapters import Batch
    >>> from nilearn_vlm_hf import HFTextAdapter
    >>> adapter = HFTextAdapter(pretrained="path/to/minilm")  # doctest: +SKIP
    >>> units = adapter.extract(Batch(texts=["a cat"]), ["text.0.ffn"])  # doctest: +SKIP
    """
    )

    name = "hf-text"
    modalities = ("text",)

    def _streams(self, model):
        layers = find_layer_list(model)
        return [
            Stream("text", ("text",), layers, mask_of="text", tokens="text tokens incl. special tokens, no padding")
        ]

    def _run(self, inputs, streams):
        self._call(self._model, inputs["text"])


class HFVisionAdapter(_AutoEncoder):
    __doc__ = (
        """Vision transformers from Hugging Face (ViT, DeiT, BEiT, DINO, DINOv2, ...).

    The model is loaded with ``transformers.AutoModel``. One stream,
    ``vision``, with the sites ``vision.L.{attn_out,head,ffn,resid}`` (see
    :class:`HFTextAdapter`). Tokens are the model's sequence: CLS (and
    register tokens, where the model has them) then patches; ``mean`` pooling
    averages all of them, CLS included; ``eot`` does not apply.
"""
        + _PARAMS_DOC.replace("{config}", _AUTO_CONFIG_DOC)
        + """
    Examples
    --------
    >>> from nilearn_vlm_hf import HFVisionAdapter
    >>> adapter = HFVisionAdapter(config={"model_type": "vit", "hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    ...     "image_size": 32, "patch_size": 8})
    >>> [s.name for s in adapter.sites()][:4]
    ['vision.0.attn_out', 'vision.0.head', 'vision.0.ffn', 'vision.0.resid']
    """
    )

    name = "hf-vision"
    modalities = ("image",)

    def _streams(self, model):
        layers = find_layer_list(model)
        return [Stream("vision", ("image",), layers, tokens="CLS (+ registers) and patch tokens")]

    def _default_image_processor(self):
        return vit_processor(self._model.config)

    def _run(self, inputs, streams):
        self._call(self._model, {"pixel_values": inputs["pixel_values"]})


def _square(size):
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[-1])
    return int(size), int(size)


def vit_processor(config):
    """A ViT image processor for ``config.image_size`` (resize, rescale, mean/std 0.5)."""
    from transformers import ViTImageProcessor

    h, w = _square(config.image_size)
    return ViTImageProcessor(size={"height": h, "width": w})
