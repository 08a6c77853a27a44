"""Reading the official METER checkpoints and mapping them onto :class:`METER`.

The released files (``meter_clip16_288_roberta_pretrain.ckpt`` and the
fine-tuned ones) are PyTorch-Lightning 1.3 checkpoints: a pickled dict whose
``"state_dict"`` holds the weights, next to training state (hyper-parameters
from sacred, callbacks keyed by class objects, optimizer states) whose classes
may not be importable. :func:`read_checkpoint` first tries
``torch.load(weights_only=True)``; when the file holds such objects it falls
back to an unpickler that only rebuilds torch's allow-listed objects (the
same list as ``weights_only``) and turns every other class into an inert stub
(nothing from the file is imported or executed). Only the weights are kept.

The module names of :class:`~nilearn_vlm_meter.model.METER` are the official
key names, so the mapping is the identity, except for:

* keys METER never uses, dropped: the CLIP text leftovers
  ``vit_model.positional_embedding`` and ``vit_model.ln_final.*`` and the
  ``text_transformer.embeddings.position_ids`` buffer (non-persistent in
  recent transformers);
* task heads other than ``itm_score`` (``mlm_score``, ``vqa_classifier``,
  ...), reported and dropped; no unit site depends on a head;
* ``vit_model.visual.positional_embedding``, resized bicubically (METER's
  ``adapt_position_encoding``) when the checkpoint's resolution differs
  from the model's.

Any other missing or unexpected key, or a shape mismatch, is an error that
lists the keys.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings

import torch

from nilearn_vlm_meter._vision import resize_positional_embedding
from nilearn_vlm_meter.model import METERConfig

#: Keys of the official checkpoints that METER never uses.
IGNORED_KEYS = (
    "vit_model.positional_embedding",
    "vit_model.ln_final.weight",
    "vit_model.ln_final.bias",
    "text_transformer.embeddings.position_ids",
    "text_transformer.embeddings.token_type_ids",
)

#: Prefixes of task heads (no unit site depends on them).
HEAD_PREFIXES = (
    "itm_score.",
    "mlm_score.",
    "vqa_classifier.",
    "nlvr2_classifier.",
    "snli_classifier.",
    "rank_output.",
)

#: Heads that :class:`~nilearn_vlm_meter.model.METER` builds.
MODEL_HEADS = ("itm_score.",)

POS_KEY = "vit_model.visual.positional_embedding"


# -- safe reading ------------------------------------------------------------
class _Stub(dict):
    """Inert stand-in for a class the checkpoint names but we do not import."""

    _stub_path = "?"

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._stub_args = args
        self._stub_items = []

    def __setstate__(self, state):
        self._stub_state = state

    def append(self, item):
        self._stub_items.append(item)

    def extend(self, items):
        self._stub_items.extend(items)

    def __repr__(self):
        return f"<stub of {self._stub_path}>"


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves torch's ``weights_only`` allow-list; anything else becomes a stub."""

    stubbed: set = set()

    def find_class(self, module, name):
        from torch import _weights_only_unpickler as wou

        path = f"{module}.{name}"
        allowed = wou._get_allowed_globals()
        if path in allowed:
            return allowed[path]
        type(self).stubbed.add(path)
        return type(name, (_Stub,), {"_stub_path": path, "__module__": "nilearn_vlm_meter.checkpoint"})


class _RestrictedPickleModule:
    """A ``pickle_module`` for ``torch.load`` that never imports from the file."""

    Unpickler = _RestrictedUnpickler
    __name__ = "nilearn_vlm_meter.checkpoint._restricted_pickle"

    @staticmethod
    def load(file, **kwargs):
        return _RestrictedUnpickler(file, **kwargs).load()


def read_checkpoint(path):
    """Read the weights of an official METER checkpoint, safely.

    Parameters
    ----------
    path : str or os.PathLike
        A Lightning ``.ckpt`` (dict with ``"state_dict"``) or a file holding a
        bare state dict.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        Floating-point tensors cast to float32.
    info : dict
        ``{"stubbed_classes": [...], "entries": [...]}``: classes replaced by
        stubs (empty when ``weights_only`` loading sufficed) and the top-level
        entries of the file.

    Examples
    --------
    >>> import tempfile, torch, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.ckpt")
    >>> torch.save({"epoch": 3, "state_dict": {"a.weight": torch.ones(2)}}, path)
    >>> sd, info = read_checkpoint(path)
    >>> list(sd), info["entries"]
    (['a.weight'], ['epoch', 'state_dict'])
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"METER checkpoint {path!r} does not exist; download an official .ckpt "
            "(e.g. meter_clip16_288_roberta_pretrain.ckpt) and pass its path as checkpoint="
        )
    stubbed = []
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        _RestrictedUnpickler.stubbed = set()
        obj = torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule
        )
        stubbed = sorted(_RestrictedUnpickler.stubbed)
    if not isinstance(obj, dict):
        raise ValueError(f"{path!r} holds a {type(obj).__name__}, not a checkpoint dict or state dict")
    entries = sorted(map(str, obj))
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(
            f"{path!r} has no state dict of tensors: expected a Lightning checkpoint with a "
            f"'state_dict' entry or a bare state dict; top-level entries: {entries[:10]}"
        )
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    return sd, {"stubbed_classes": stubbed, "entries": entries}


# -- configuration from shapes -------------------------------------------------
def _count(sd, pattern):
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in sd for m in [rx.match(k)] if m}
    return max(idx) + 1 if idx else 0


def config_from_state_dict(state_dict, image_size=None, **heads):
    """Infer a :class:`METERConfig` from the tensor shapes of a METER state dict.

    Parameters
    ----------
    state_dict : dict
        Official METER keys.
    image_size : int, optional
        Resolution to run at; by default the checkpoint's own.
    **heads
        ``vision_heads``, ``text_heads``, ``num_heads`` (not visible in shapes;
        default width // 64, i.e. 12 for the released models).

    Returns
    -------
    METERConfig
    """
    if any(k.startswith("vit_model.patch_embed") or k.startswith("vit_model.layers.") for k in state_dict):
        raise ValueError(
            "this is a Swin-based METER checkpoint; only the CLIP-ViT ones "
            "(meter_clip16_*) are supported"
        )
    needed = (
        "vit_model.visual.conv1.weight",
        POS_KEY,
        "text_transformer.embeddings.word_embeddings.weight",
        "cross_modal_text_transform.weight",
        "token_type_embeddings.weight",
    )
    absent = [k for k in needed if k not in state_dict]
    if absent:
        raise ValueError(f"not a METER CLIP state dict: keys {absent} are missing")
    conv = state_dict["vit_model.visual.conv1.weight"]
    vision_width, patch = conv.shape[0], conv.shape[-1]
    grid = int(round((state_dict[POS_KEY].shape[0] - 1) ** 0.5))
    words = state_dict["text_transformer.embeddings.word_embeddings.weight"]
    pos = state_dict.get("text_transformer.embeddings.position_embeddings.weight")
    hidden = state_dict["cross_modal_text_transform.weight"].shape[0]

    def first(key, dim=0, default=None):
        t = state_dict.get(key)
        return default if t is None else t.shape[dim]

    text_width = words.shape[1]
    cfg = METERConfig(
        image_size=int(image_size) if image_size is not None else grid * patch,
        patch_size=patch,
        vision_width=vision_width,
        vision_layers=_count(state_dict, r"vit_model\.visual\.transformer\.resblocks\.(\d+)\."),
        vision_heads=heads.get("vision_heads") or max(vision_width // 64, 1),
        vision_mlp_width=first("vit_model.visual.transformer.resblocks.0.mlp.c_fc.weight", 0, 4 * vision_width),
        text_width=text_width,
        text_layers=_count(state_dict, r"text_transformer\.encoder\.layer\.(\d+)\."),
        text_heads=heads.get("text_heads") or max(text_width // 64, 1),
        text_intermediate=first("text_transformer.encoder.layer.0.intermediate.dense.weight", 0, 4 * text_width),
        vocab_size=words.shape[0],
        max_position_embeddings=pos.shape[0] if pos is not None else 514,
        hidden_size=hidden,
        num_top_layer=_count(state_dict, r"cross_modal_text_layers\.(\d+)\."),
        num_heads=heads.get("num_heads") or max(hidden // 64, 1),
        fusion_intermediate=first("cross_modal_text_layers.0.intermediate.dense.weight", 0, 4 * hidden),
        num_token_types=state_dict["token_type_embeddings.weight"].shape[0],
    )
    return cfg


# -- mapping -------------------------------------------------------------------
def _listing(keys, limit=25):
    keys = sorted(keys)
    text = ", ".join(keys[:limit])
    return text + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_meter_state_dict(model, state_dict):
    """Load official METER weights into a :class:`METER` model, checking every key.

    Parameters
    ----------
    model : METER
        Built with a configuration matching the checkpoint
        (:func:`config_from_state_dict`); its image size may differ from the
        checkpoint's (the position embedding is then resized bicubically).
    state_dict : dict
        Official key names.

    Returns
    -------
    dict
        Report: ``ignored`` (unused keys dropped), ``ignored_heads`` (head
        keys of heads the model does not build), ``missing_heads`` (heads the
        model builds but the checkpoint lacks; they keep random weights),
        ``resized`` (position embedding rows before/after, or None).

    Raises
    ------
    ValueError
        Missing or unexpected encoder keys, or shape mismatches, listed.
    """
    sd = dict(state_dict)
    report = {"ignored": [], "ignored_heads": [], "missing_heads": [], "resized": None}
    own = model.state_dict()
    for key in IGNORED_KEYS:
        # position_ids is a persistent buffer in transformers < 4.31: keep it there
        if key in sd and key not in own:
            del sd[key]
            report["ignored"].append(key)
    for key in list(sd):
        if key.startswith(HEAD_PREFIXES) and not key.startswith(MODEL_HEADS):
            report["ignored_heads"].append(key)
            del sd[key]
    if POS_KEY in sd and POS_KEY in own and sd[POS_KEY].shape != own[POS_KEY].shape:
        grid_after = int(round((own[POS_KEY].shape[0] - 1) ** 0.5))
        before = sd[POS_KEY].shape[0]
        sd[POS_KEY] = resize_positional_embedding(sd[POS_KEY], grid_after)
        report["resized"] = (before, sd[POS_KEY].shape[0])
    missing = [k for k in own if k not in sd and k not in IGNORED_KEYS]
    unexpected = [k for k in sd if k not in own]
    missing_heads = [k for k in missing if k.startswith(MODEL_HEADS)]
    missing_enc = [k for k in missing if not k.startswith(MODEL_HEADS)]
    problems = []
    if missing_enc:
        problems.append(f"missing keys: {_listing(missing_enc)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sd
        if k in own and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if shapes:
        problems.append(f"shape mismatches: {_listing(shapes, 10)}")
    if problems:
        raise ValueError(
            "the state dict does not match METER (CLIP-ViT + RoBERTa): "
            + "; ".join(problems)
            + ". Check that the checkpoint is an official METER CLIP checkpoint and that the "
            "size parameters (vision_layers, text_layers, num_top_layer, ...) match it."
        )
    meta = _is_meta(model)
    model.load_state_dict(sd, strict=False, assign=meta)
    if meta:
        _materialize(model)
    if missing_heads:
        report["missing_heads"] = missing_heads
        warnings.warn(
            f"the checkpoint has no weights for the head(s) {_listing({k.split('.')[0] for k in missing_heads})}; "
            "they keep random weights (no unit site depends on them)",
            UserWarning,
            stacklevel=2,
        )
    if report["ignored_heads"]:
        report["ignored_heads"] = sorted({k.split(".")[0] for k in report["ignored_heads"]})
    return report


def _is_meta(model):
    p = next(model.parameters(), None)
    return p is not None and p.is_meta


def _materialize(model):
    """After an ``assign`` load into a model built on the meta device.

    Recreates RoBERTa's non-persistent buffers and gives random weights
    (METER's init) to what the checkpoint lacked (absent heads).
    """
    from torch import nn

    emb = model.text_transformer.embeddings
    n = emb.position_embeddings.num_embeddings
    device = emb.word_embeddings.weight.device
    for name, buf in list(emb.named_buffers(recurse=False)):
        if buf.is_meta:
            value = torch.arange(n, device=device).expand((1, -1))
            if name != "position_ids":
                value = torch.zeros((1, n), dtype=torch.long, device=device)
            emb.register_buffer(name, value, persistent=False)
    for module in model.modules():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if not any(t.is_meta for t in own):
            continue
        module.to_empty(device=device, recurse=False)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        else:
            raise ValueError(f"cannot initialise {type(module).__name__} left empty by the checkpoint")
