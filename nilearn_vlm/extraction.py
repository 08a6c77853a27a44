"""The extraction driver: stimuli table -> unit activations (n_stimuli, n_units)."""

from __future__ import annotations

import inspect
import os
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from nilearn_vlm._cache import ActivationCache, content_key
from nilearn_vlm._provenance import FileDigests, distribution_of, package_versions
from nilearn_vlm._utils import nilearn_input_tags
from nilearn_vlm.adapters import BaseAdapter, Batch, check_pooling, select_sites
from nilearn_vlm.plugins import get_adapter
from nilearn_vlm.stimuli._images import hash_stimulus, is_missing, load_image

# modality groups, in the order batches are planned
_GROUPS = (("image", "text"), ("image",), ("text",), ())


def _accepts_device(cls):
    """Whether an adapter class takes ``device`` in its model parameters."""
    if getattr(cls, "accepts_device", False):
        return True
    if "device" in getattr(cls, "_DEFAULTS", {}):
        return True
    for method in (cls.__init__, cls.load):
        try:
            params = inspect.signature(method).parameters
        except (TypeError, ValueError):  # pragma: no cover
            continue
        if "device" in params:
            return True
    return False


def extraction_versions(adapter):
    """Versions of the packages that compute an adapter's units (they enter the cache key).

    The adapter's own distribution (its plugin), and torch, transformers and
    open_clip where installed.

    Parameters
    ----------
    adapter : BaseAdapter

    Returns
    -------
    dict
        ``{distribution: version}``.
    """
    own = distribution_of(type(adapter))
    return package_versions(([own] if own else []) + ["torch", "transformers", "open_clip_torch"])


def check_adapter_output(name, out, sites, rows):
    """An adapter's ``extract`` output, checked: every requested site, its shape, finite values.

    Parameters
    ----------
    name : str
        The adapter's name (for messages).
    out : dict
        ``{site name: array}`` returned by ``extract``.
    sites : list of Site
        The sites asked for.
    rows : array
        The batch's stimulus positions.

    Returns
    -------
    dict
        ``{site name: float32 array (len(rows), width)}``.

    Raises
    ------
    RuntimeError
        Naming the adapter, the site and what is wrong (an adapter bug).
    """
    if not isinstance(out, dict):
        raise RuntimeError(f"adapter {name!r} returned {type(out).__name__} from extract; expected a dict "
                           "{site name: array} (an adapter bug)")
    missing = [s.name for s in sites if s.name not in out]
    if missing:
        raise RuntimeError(
            f"adapter {name!r} returned no values for the requested site(s) {missing} (it returned "
            f"{sorted(out)}); an adapter bug: extract must return every site it is asked for"
        )
    checked = {}
    for s in sites:
        arr = np.asarray(out[s.name])
        if arr.shape != (len(rows), s.width):
            raise RuntimeError(
                f"adapter {name!r} returned shape {arr.shape} for site {s.name!r}; "
                f"expected {(len(rows), s.width)} (an adapter bug)"
            )
        arr = arr.astype(np.float32)
        bad = ~np.isfinite(arr)
        if bad.any():
            where = np.flatnonzero(bad.any(axis=1))
            raise RuntimeError(
                f"adapter {name!r} returned {int(bad.sum())} non-finite value(s) (NaN or Inf, in float32) "
                f"for site {s.name!r}, at stimulus position(s) {np.asarray(rows)[where][:5].tolist()}; "
                "nothing was cached. Check the model's weights and dtype (float16 overflows), or the inputs"
            )
        checked[s.name] = arr
    return checked


def _stimulus_modalities(stimuli):
    """Per-row tuple of modalities present (image, text)."""
    has_image = ~stimuli["image"].map(is_missing).to_numpy() if "image" in stimuli else None
    has_text = ~stimuli["text"].map(is_missing).to_numpy() if "text" in stimuli else None
    n = len(stimuli)
    has_image = np.zeros(n, bool) if has_image is None else has_image.astype(bool)
    has_text = np.zeros(n, bool) if has_text is None else has_text.astype(bool)
    return has_image, has_text


class NeuronActivations(TransformerMixin, BaseEstimator):
    """Unit activations of a model for a table of stimuli.

    Runs a model adapter (a plugin such as ``"clip"``, or any
    :class:`~nilearn_vlm.adapters.BaseAdapter`) over the stimuli in batches,
    captures the units of the chosen sites, pools them over tokens and
    returns one row of float32 units per stimulus.

    Stimuli may lack a modality: a CLIP-like (unpaired) adapter computes for
    each stimulus only the sites of the modalities it has (stimuli are grouped
    by the modalities they have), and the units of the other sites are zero;
    in a time series such a stimulus contributes nothing to those units before
    the HRF. The generic selectors ``"default"`` and ``"all"`` keep the sites
    of the modalities the fitted stimuli have; asking by pattern for a site
    whose modality no stimulus has is an error. A
    paired adapter (``adapter.paired``, e.g. METER) needs every modality; a
    stimulus lacking one is given the adapter's filler (``missing_text=`` /
    ``missing_image=`` in ``model_params``) or is an error. A stimulus with
    neither an image nor a text (a rest period) has zero units.

    Parameters
    ----------
    model : str, BaseAdapter or BaseAdapter subclass, default="clip"
        A registered adapter name (see ``nilearn-vlm plugins``), an adapter
        class, or a configured adapter instance (then ``model_params`` must be
        empty).
    model_params : dict, optional
        Parameters of the adapter (weights, architecture, seed, fillers, ...).
    sites : str or list of str, default="default"
        Site selector (see :func:`nilearn_vlm.adapters.select_sites`):
        ``"default"`` (attention outputs), ``"all"``, patterns such as
        ``"vision.*.ffn"`` or a list.
    pooling : str or dict, default="mean"
        Token pooling rule, or ``{stream: rule}`` (see
        :func:`nilearn_vlm.adapters.pool`). ``"none"`` is not available here
        (the output is 2-D); call the adapter's ``extract`` for tokens.
    batch_size : int, default=32
        Stimuli per forward pass.
    device : str, default="cpu"
        Device, passed to the adapter's ``model_params`` when the adapter
        accepts one (``accepts_device = True`` or a ``device`` parameter).
    memory : str or path, optional
        Cache folder. Activations are stored there per site, memory-mapped,
        written batch by batch and checkpointed (flushed, then recorded in an
        atomically replaced progress file) at most once a second, at the end
        and on errors; the key is a content hash of the adapter's
        fingerprint (name, version, weights digest, config, preprocessing),
        the sites, the pooling, the batch size and every stimulus's content
        (image bytes or pixels, text). An interrupted extraction (even
        SIGKILL) resumes where it stopped and gives the same bits as an
        uninterrupted one.
    verbose : int, default=0
        Progress bar (stimuli/s, ETA) when > 0.

    Attributes
    ----------
    adapter_ : BaseAdapter
        The loaded adapter.
    sites_ : list of Site
        Sites in output order.
    site_slices_ : dict
        ``{site_name: slice}`` of each site's columns in the output.
    units_ : pandas.DataFrame
        The units table (:mod:`nilearn_vlm.units`): one row per output
        column, with ``name, stream, layer, depth, kind, index, site``; the
        depths come from the adapter's whole model
        (:meth:`~nilearn_vlm.adapters.BaseAdapter.units_table`).
    n_features_out_ : int
        Number of units.
    cache_path_ : pathlib.Path or None
        Cache entry of the last ``transform`` (None without ``memory``).

    Examples
    --------
    >>> import pandas as pd
    >>> from nilearn_vlm.testing import ToyAdapter
    >>> acts = NeuronActivations(model=ToyAdapter(width=8, n_layers=1), sites="text.*.ffn")
    >>> X = acts.fit_transform(pd.DataFrame({"text": ["a cat", "a dog on a mat"]}))
    >>> X.shape, X.dtype
    ((2, 32), dtype('float32'))
    >>> acts.get_feature_names_out()[:2].tolist()
    ['text.0.ffn.0', 'text.0.ffn.1']
    >>> acts.units_[["name", "stream", "layer", "depth", "site"]].head(1).values.tolist()
    [['text.0.ffn.0', 'text', 0, 1.0, 'text.0.ffn']]
    """

    _parameter_constraints = {
        "model": [str, type, BaseAdapter],
        "model_params": [dict, None],
        "sites": [str, list, tuple, None],
        "pooling": [str, dict],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, None],
        "memory": [str, os.PathLike, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model="clip",
        model_params=None,
        sites="default",
        pooling="mean",
        batch_size=32,
        device="cpu",
        memory=None,
        verbose=0,
    ):
        self.model = model
        self.model_params = model_params
        self.sites = sites
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.memory = memory
        self.verbose = verbose

    # -- fitting ---------------------------------------------------------
    def _make_adapter(self):
        params = dict(self.model_params or {})
        if isinstance(self.model, BaseAdapter):
            if params:
                raise ValueError(
                    "model_params apply to an adapter name or class; configure the adapter "
                    "instance itself, or pass model='<name>' with model_params"
                )
            adapter = self.model
        else:
            if isinstance(self.model, str):
                cls = get_adapter(self.model)
            elif isinstance(self.model, type) and issubclass(self.model, BaseAdapter):
                cls = self.model
            else:
                raise TypeError(
                    "model must be a registered adapter name (str), a BaseAdapter subclass or "
                    f"instance; got {type(self.model).__name__}"
                )
            if "device" not in params:
                if _accepts_device(cls):
                    params["device"] = self.device
                elif self.device not in (None, "cpu"):
                    raise ValueError(
                        f"adapter {cls.name!r} takes no device parameter; it runs on the CPU "
                        "(use device='cpu')"
                    )
            adapter = cls(**params)
        adapter.ensure_loaded()
        return adapter

    def _check_stimuli(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "NeuronActivations takes a pandas DataFrame of stimuli with an 'image' "
                f"and/or a 'text' column; got {type(X).__name__}"
            )
        if "image" not in X.columns and "text" not in X.columns:
            raise ValueError(
                f"the stimuli table needs an 'image' and/or a 'text' column; it has {list(X.columns)}"
            )
        if len(X) == 0:
            raise ValueError("the stimuli table is empty")
        return X

    def _check_modalities(self, has_image, has_text):
        adapter = self.adapter_
        present = {"image": bool(has_image.any()), "text": bool(has_text.any())}
        if adapter.paired:
            for modality, has in (("image", has_image), ("text", has_text)):
                if modality in adapter.modalities and not has.all():
                    filler = adapter.model_params.get(f"missing_{modality}")
                    if filler is None:
                        rows = np.flatnonzero(~has)
                        raise ValueError(
                            f"adapter {adapter.name!r} is paired (needs image and text together) but "
                            f"{rows.size} stimuli have no {modality} (first at position {rows[0]}); "
                            f"give a filler with model_params={{'missing_{modality}': ...}} or drop them"
                        )
            return
        for site in self.sites_:
            lacking = [m for m in site.modalities if not present.get(m, False)]
            if lacking:
                raise ValueError(
                    f"site {site.name!r} needs {' and '.join(lacking)} input but no stimulus has "
                    f"{'it' if len(lacking) == 1 else 'them'}; add a '{lacking[0]}' column or select "
                    "other sites (e.g. sites='text.*.attn_out')"
                )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the adapter and resolve the sites.

        Parameters
        ----------
        X : pandas.DataFrame
            Stimuli with an ``image`` and/or a ``text`` column.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        X = self._check_stimuli(X)
        self.adapter_ = self._make_adapter()
        sites = select_sites(self.adapter_.sites(), self.sites)
        rules = check_pooling(self.pooling, sorted({s.stream for s in sites}))
        if "none" in rules.values():
            raise ValueError(
                "pooling='none' keeps tokens (3-D) and NeuronActivations returns (n_stimuli, "
                "n_units); choose 'mean', 'cls', 'eot' or 'max', or call adapter.extract directly"
            )
        has_image, has_text = _stimulus_modalities(X)
        if not self.adapter_.paired and (self.sites is None or self.sites in ("default", "all")):
            # generic selectors keep the sites of the modalities the stimuli have
            present = {m for m, has in (("image", has_image), ("text", has_text)) if has.any()}
            kept = [s for s in sites if set(s.modalities) <= present]
            if not kept:
                raise ValueError(
                    f"no site selected by {self.sites!r} can be computed: the stimuli have no "
                    f"{' or '.join(sorted({m for s in sites for m in s.modalities}))} input"
                )
            sites = kept
        self.sites_ = list(sites)
        self.pooling_ = rules
        start = 0
        self.site_slices_ = {}
        for s in self.sites_:
            self.site_slices_[s.name] = slice(start, start + s.width)
            start += s.width
        self.n_features_out_ = start
        self.units_ = self.adapter_.units_table(self.sites_)
        self._check_modalities(has_image, has_text)
        return self

    def get_feature_names_out(self, input_features=None):
        """Unit names ``stream.layer.kind.unit`` in output order."""
        check_is_fitted(self, "sites_")
        return self.units_["name"].to_numpy(dtype=object, copy=True)

    # -- extraction ------------------------------------------------------
    def _plan(self, has_image, has_text):
        """Batches as (group modalities, row positions, sites), deterministic."""
        plan = []
        for group in _GROUPS:
            want_image, want_text = "image" in group, "text" in group
            rows = np.flatnonzero((has_image == want_image) & (has_text == want_text))
            if rows.size == 0 or not group:  # a stimulus with neither modality: zeros
                continue
            if self.adapter_.paired:
                sites = list(self.sites_)
            else:
                sites = [s for s in self.sites_ if set(s.modalities) <= set(group)]
            if not sites:
                continue
            for start in range(0, rows.size, self.batch_size):
                plan.append((group, rows[start : start + self.batch_size], sites))
        return plan

    def _run_batch(self, X, group, rows, sites):
        images = texts = None
        if "image" in group and "image" in self.adapter_.modalities:
            images = [load_image(X["image"].iat[i]) for i in rows]
        if "text" in group and "text" in self.adapter_.modalities:
            texts = [str(X["text"].iat[i]) for i in rows]
        out = self.adapter_.extract(Batch(images=images, texts=texts), sites, self.pooling_)
        return check_adapter_output(self.adapter_.name, out, sites, rows)

    def _cache_key(self, X):
        digests = FileDigests(Path(self.memory) / "nilearn_vlm_activations" / "file_digests.json")
        stim = content_key(
            [
                hash_stimulus(
                    X["image"].iat[i] if "image" in X else None, X["text"].iat[i] if "text" in X else None,
                    digests=digests,
                )
                for i in range(len(X))
            ]
        )
        digests.save()
        meta = {
            "fingerprint": self.adapter_.fingerprint(),
            "packages": extraction_versions(self.adapter_),
            "sites": [[s.name, s.width] for s in self.sites_],
            "pooling": self.pooling_,
            "batch_size": int(self.batch_size),
            "n_stimuli": len(X),
            "stimuli": stim,
        }
        return content_key(meta), meta

    def transform(self, X):
        """Extract the units of every stimulus.

        Parameters
        ----------
        X : pandas.DataFrame
            Stimuli with an ``image`` (path, array or PIL image; None where
            absent) and/or a ``text`` (str; None where absent) column.

        Returns
        -------
        ndarray of shape (n_stimuli, n_units), float32
            Columns in the order of :meth:`get_feature_names_out`.
        """
        from tqdm.auto import tqdm

        check_is_fitted(self, "sites_")
        X = self._check_stimuli(X)
        has_image, has_text = _stimulus_modalities(X)
        self._check_modalities(has_image, has_text)
        plan = self._plan(has_image, has_text)
        n = len(X)
        out = np.zeros((n, self.n_features_out_), dtype=np.float32)
        cache = None
        self.cache_path_ = None
        done = set()
        if self.memory is not None:
            key, meta = self._cache_key(X)
            cache = ActivationCache(
                self.memory, key, [(s.name, s.width) for s in self.sites_], n, len(plan), meta,
                log=(lambda msg: print(f"[nilearn-vlm] {msg}", flush=True)) if self.verbose else None,
            )
            done = cache.open()
            self.cache_path_ = cache.root
        try:
            return self._extract(X, plan, out, cache, done, tqdm)
        finally:
            if cache is not None:
                cache.close()

    def _extract(self, X, plan, out, cache, done, tqdm):
        n = len(X)
        bar = tqdm(
            total=n,
            unit="stim",
            desc=f"{self.adapter_.name} units",
            disable=not self.verbose,
            initial=sum(len(rows) for b, (_, rows, _) in enumerate(plan) if b in done),
            dynamic_ncols=True,
        )
        try:
            for batch_id, (group, rows, sites) in enumerate(plan):
                if batch_id in done:
                    continue
                values = self._run_batch(X, group, rows, sites)
                if cache is not None:
                    cache.write_batch(batch_id, rows, values)
                else:
                    for name, arr in values.items():
                        out[rows, self.site_slices_[name]] = arr
                bar.update(len(rows))
        finally:
            bar.close()
        if cache is not None:
            cache.finish()
            cache.read(out, self.site_slices_)
        return out

    def fit_transform(self, X, y=None):
        """Fit, then extract the units of every stimulus (see :meth:`transform`)."""
        return self.fit(X, y).transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a 2-D table (a DataFrame) whose cells are texts and images (paths, arrays)
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = True
        return nilearn_input_tags(tags)
