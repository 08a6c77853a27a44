"""The adapter contract: what a model plugin implements.

The core never imports torch; an adapter plugin does, inside its own package.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from typing import ClassVar

from nilearn_vlm.adapters._pooling import check_pooling
from nilearn_vlm.units import Site, layer_depths, select_sites, units_table

MODALITIES = ("image", "text")


@dataclass
class Batch:
    """A batch of stimuli handed to :meth:`BaseAdapter.extract`.

    Parameters
    ----------
    images : list of PIL.Image.Image or None
        RGB images, one per stimulus; None when the batch has no images.
    texts : list of str or None
        Texts, one per stimulus; None when the batch has no texts.

    Examples
    --------
    >>> b = Batch(images=None, texts=["a cat", "a dog"])
    >>> len(b), b.modalities
    (2, ('text',))
    """

    images: list | None = None
    texts: list | None = None

    def __post_init__(self):
        if self.images is None and self.texts is None:
            raise ValueError("a Batch needs images, texts or both")
        if self.images is not None and self.texts is not None:
            if len(self.images) != len(self.texts):
                raise ValueError(
                    f"a Batch has {len(self.images)} images but {len(self.texts)} texts; "
                    "give one of each per stimulus"
                )

    def __len__(self):
        return len(self.images if self.images is not None else self.texts)

    @property
    def modalities(self):
        """Modalities present in the batch."""
        out = []
        if self.images is not None:
            out.append("image")
        if self.texts is not None:
            out.append("text")
        return tuple(out)

    def take(self, index):
        """Sub-batch of the stimuli at positions ``index``."""
        index = list(index)
        return Batch(
            images=None if self.images is None else [self.images[i] for i in index],
            texts=None if self.texts is None else [self.texts[i] for i in index],
        )


class BaseAdapter(abc.ABC):
    """Base class of model adapters.

    An adapter wraps one model family. It lists the model's unit populations
    as :class:`Site` objects and extracts pooled unit activations for a batch
    of stimuli. ``__init__`` only stores the model parameters; :meth:`load`
    builds or loads the model (called on first use).

    Subclasses set the class attributes and implement :meth:`load`,
    :meth:`sites`, :meth:`extract` and :meth:`token_masks`; models whose
    streams feed each other (fusion layers after encoders) also override
    :meth:`forward_links`, from which the units' fractional depth is
    computed (:mod:`nilearn_vlm.units`).

    Attributes
    ----------
    name : str
        Registry name (``"clip"``).
    version : str
        Version of the adapter's extraction code; it enters the activation
        cache key, so bump it whenever the numbers an adapter gives change.
    modalities : tuple of str
        Modalities the model accepts (``"image"``, ``"text"``).
    paired : bool
        True when every stimulus needs every modality (co-attention models
        such as METER); such adapters take explicit fillers
        (``missing_text=``/``missing_image=``) or raise.

    Parameters
    ----------
    **model_params
        Model parameters, documented by each adapter (weights, architecture,
        seed, ...).
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    modalities: ClassVar[tuple] = MODALITIES
    paired: ClassVar[bool] = False

    def __init__(self, **model_params):
        self.model_params = dict(model_params)
        self._loaded = False

    # -- to implement ----------------------------------------------------
    @abc.abstractmethod
    def load(self, **model_params):
        """Build or load the model; update ``model_params``; return self."""

    @abc.abstractmethod
    def sites(self):
        """Return every :class:`Site` of the model, in model order."""

    @abc.abstractmethod
    def extract(self, batch, sites, pooling="mean"):
        """Extract unit activations.

        Parameters
        ----------
        batch : Batch
            Stimuli.
        sites : list of Site or list of str
            Sites to capture (already selected).
        pooling : str or dict
            Pooling rule (see :func:`nilearn_vlm.adapters.pool`), or a dict
            ``{stream: rule}``.

        Returns
        -------
        dict
            ``{site_name: float32 array}`` of shape (n, width), or
            (n, tokens, width) for ``pooling="none"``, for exactly the
            requested sites. A site whose modality the batch lacks raises
            ValueError (unless the adapter is paired and has a filler).
        """

    @abc.abstractmethod
    def token_masks(self, batch):
        """Valid-token masks per stream, as the adapter's hooks see them.

        Returns
        -------
        dict
            ``{stream: bool array (n, tokens) or None}``; None when every
            token is valid. Used by :func:`nilearn_vlm.testing.check_adapter`
            to check pooling against :func:`nilearn_vlm.adapters.pool`.
        """

    # -- to override where streams feed each other ----------------------
    def forward_links(self):
        """Links between the streams along the forward pass.

        Layer ``l`` of a stream feeds layer ``l + 1`` of the same stream; this
        lists the other edges of the model's graph of blocks, from which
        :func:`nilearn_vlm.units.layer_depths` computes each block's
        fractional depth (see :mod:`nilearn_vlm.units`).

        Returns
        -------
        list of ((str, int), (str, int))
            ``((from_stream, from_layer), (to_stream, to_layer))``: the
            output of the first block is an input of the second. The default,
            ``[]``, says the streams are separate towers (CLIP, SigLIP, a
            text encoder). A fusion model links the last encoder layers to its
            first fusion layers (METER: ``(("vision", V - 1), ("cross_text",
            0))``, ``(("text", T - 1), ("cross_text", 0))``, ...), so every
            fusion layer comes after the encoders.
        """
        return []

    # -- provided --------------------------------------------------------
    def layer_depths(self):
        """Fractional depth of every block: ``{(stream, layer): depth}``.

        :func:`nilearn_vlm.units.layer_depths` of :meth:`sites` and
        :meth:`forward_links`.
        """
        self.ensure_loaded()
        return layer_depths(self.sites(), self.forward_links())

    def units_table(self, sites=None):
        """The units table of some sites (default: all), depths from the whole model.

        Parameters
        ----------
        sites : list of Site or str, or None
            Sites (or site names) in output order.

        Returns
        -------
        pandas.DataFrame
            :func:`nilearn_vlm.units.units_table` with this model's sites
            and links.
        """
        self.ensure_loaded()
        every = self.sites()
        if sites is None:
            chosen = every
        else:
            by_name = {s.name: s for s in every}
            keys = [s.name if isinstance(s, Site) else s for s in sites]
            unknown = [k for k in keys if k not in by_name]
            if unknown:
                raise ValueError(f"unknown sites {unknown} for adapter {self.name!r}; list them with adapter.sites()")
            chosen = [by_name[k] for k in keys]
        return units_table(chosen, links=self.forward_links(), model_sites=every)

    def ensure_loaded(self):
        """Call :meth:`load` once."""
        if not self._loaded:
            self.load()
            self._loaded = True
        return self

    def resolve_sites(self, selector="default"):
        """Select sites by pattern (see :func:`nilearn_vlm.adapters.select_sites`)."""
        self.ensure_loaded()
        return select_sites(self.sites(), selector)

    def _check_request(self, batch, sites, pooling):
        """Common argument checks for :meth:`extract` implementations.

        Returns the list of :class:`Site` and the per-stream pooling rules.
        """
        if not isinstance(batch, Batch):
            raise TypeError(f"extract expects a nilearn_vlm.adapters.Batch, got {type(batch).__name__}")
        by_name = {s.name: s for s in self.sites()}
        chosen = []
        for site in sites:
            key = site.name if isinstance(site, Site) else site
            if key not in by_name:
                raise ValueError(
                    f"unknown site {key!r} for adapter {self.name!r}; list them with "
                    "adapter.sites() or select with a pattern such as '*.ffn'"
                )
            chosen.append(by_name[key])
        if not self.paired:
            for site in chosen:
                missing = [m for m in site.modalities if m not in batch.modalities]
                if missing:
                    raise ValueError(
                        f"site {site.name!r} needs {' and '.join(missing)} input but this batch "
                        f"has only {', '.join(batch.modalities)}; drop the site or add the modality"
                    )
        rules = check_pooling(pooling, sorted({s.stream for s in chosen}))
        return chosen, rules

    def weights_digest(self):
        """Digest of the weights in use (enters the cache key).

        The default hashes the model parameters; adapters with a loaded model
        override it to hash the weights themselves (or the checkpoint file).
        """
        return params_digest(self.model_params)

    def fingerprint(self):
        """Everything that changes the numbers, as a JSON-serialisable dict."""
        self.ensure_loaded()
        return {
            "adapter": self.name,
            "adapter_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "version": self.version,
            "model_params": _jsonable(self.model_params),
            "weights": self.weights_digest(),
            "preprocessing": _jsonable(self.preprocessing()),
        }

    def preprocessing(self):
        """Description of the input preprocessing (image size, normalisation, tokenizer)."""
        return {}

    def active_hooks(self):
        """Number of hooks currently attached to the model (0 outside extract)."""
        return 0

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.model_params.items()))
        return f"{type(self).__name__}({params})"


def count_module_hooks(module):
    """Count forward hooks on a torch module tree without importing torch."""
    total = 0
    for sub in module.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks"):
            total += len(getattr(sub, attr, {}) or {})
    return total


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=repr, sort_keys=True))


def params_digest(obj):
    """Short, stable digest of parameters: what the default ``weights_digest`` returns.

    For adapters whose weights are fully determined by parameters (random
    weights from a seed and a configuration): the digest enters the
    activation cache key, so equal parameters share cached activations.

    Parameters
    ----------
    obj : object
        JSON-serialisable parameters (dict keys are sorted; other objects are
        written with ``repr``).

    Returns
    -------
    str
        The first 16 hexadecimal digits of the SHA-256 of the sorted JSON.

    Examples
    --------
    >>> from nilearn_vlm.adapters import params_digest
    >>> params_digest({"seed": 0, "width": 8}) == params_digest({"width": 8, "seed": 0})
    True
    >>> len(params_digest({"seed": 0}))
    16
    """
    text = json.dumps(_jsonable(obj), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
