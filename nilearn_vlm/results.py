"""The results of one model on one subject, saved to and loaded from a folder.

:class:`Results` is what the pipeline hands the analyses (redundancy,
polarity, architecture comparison): plain NumPy arrays and pandas tables with
documented shapes, plus the :class:`ImageSpace` that rebuilds images of the
input's kind (NIfTI, GIfTI, CIFTI). Every field but ``model`` is optional.

Everything a report shows is a field of :class:`Results`, so a report can be
rebuilt from a saved folder alone (:func:`nilearn_vlm.report.build_report`,
``nilearn-vlm report FOLDER``).

Folder layout written by :meth:`Results.save` (no pickle), format 3::

    results.json          model, subject, run labels, timings, settings,
                          provenance, meta, index
    arrays.npz            every array field (allow_pickle=False on load)
    units.tsv             the units table: name, stream, layer, depth, kind,
                          index, site (folders written before it held
                          unit_name, site and still load)
    tables/<name>.tsv     one per table (n/a for missing values)
    networks/<atlas>.tsv  lookup table of each atlas in network_labels
    space/                space.json + mask.nii.gz | mesh/mask GIfTIs | CIFTI axis
    images/               glm_t, glm_sign_sets, glm_beta, encoder_r,
                          layer_scores as images of the input's kind (for
                          viewers; arrays.npz is what load reads)

Format 1 folders (before the encoder's null and the per-fold layer scores
became fields) still load: their ``tables["encoder_null"]`` fills
``encoder_r``, ``encoder_p`` and ``encoder_p_fwe``, and their
``meta["timings"]`` fills ``timings``. Folders before format 4 held the
encoder's cross-validated R^2 under ``encoder_scores`` (now ``encoder_cv_r2``)
and the r pooled over runs under ``encoder_r`` (now the mean of within-run r);
they load with ``encoder_scores`` -> ``encoder_cv_r2`` and a note in
``meta["encoder_r"]``.
"""

from __future__ import annotations

import warnings
from dataclasses import InitVar, dataclass, field, fields

import numpy as np
import pandas as pd

from nilearn_vlm._provenance import _json_params, collect_provenance, file_digest
from nilearn_vlm._results_checks import check_results
from nilearn_vlm._results_inputs import _analysis_input_arrays
from nilearn_vlm._results_io import _ARRAYS, _VOXEL_ARRAYS, FORMAT_VERSION, load_fields, save_results
from nilearn_vlm.spaces import ImageSpace
from nilearn_vlm.units import as_units_table, units_table

__all__ = ["FORMAT_VERSION", "ImageSpace", "Results", "collect_provenance", "file_digest"]


@dataclass
class Results:
    """What the pipeline produced for one model and one subject.

    Shapes use ``n_units`` (model units), ``n_atoms`` (dictionary atoms),
    ``n_regressors`` (GLM regressors of interest: the atoms, or units),
    ``n_scans`` (TRs) and ``n_voxels`` (voxels, vertices or grayordinates of
    ``space``).

    Attributes
    ----------
    model : str
        Model (adapter) name, e.g. ``"clip"``.
    subject : str
        Subject label.
    space : ImageSpace or None
        The data's voxels and how to rebuild images (required to save images).
    unit_names : list of str or None
        ``stream.layer.kind.index`` per unit, length ``n_units``; derived
        from ``units`` when it is given.
    unit_sites : list of str or None
        Site (``stream.layer.kind``) per unit; derived from ``units``.
    units : pandas.DataFrame or None
        The units table (:mod:`nilearn_vlm.units`): one row per unit with
        ``name, stream, layer, depth, kind, index, site``
        (``NeuronActivations.units_``). When only ``unit_names`` is given,
        it is built from them (:func:`nilearn_vlm.units.units_table`: the
        depths then count the layers present).
    atom_names : list of str or None
        Length ``n_atoms``; default ``atom0``, ``atom1``, ...
    atom_loadings : ndarray (n_atoms, n_units) or None
        Sparse codes of :class:`~nilearn_vlm.SparseAtoms` (``loadings_``).
    atom_timecourses : ndarray (n_scans, n_atoms) or None
        The atoms as TR time courses (the GLM's regressors).
    regressor_names : list of str or None
        Rows of the GLM maps; default ``atom_names`` when the counts match.
    glm_beta, glm_t : ndarray (n_regressors, n_voxels) or None
        GLM coefficients and t-values (:class:`~nilearn_vlm.VoxelGLM`
        ``coef_``/``t_`` transposed).
    glm_sign_sets : ndarray of int8 (n_regressors, n_voxels) or None
        +1 / -1 for significantly positive / negative voxels ("positive /
        negative BNs"), 0 elsewhere.
    atom_interpreted : ndarray of bool (n_atoms,) or None
        The atoms the pipeline interprets: their univariate map
        (``glm_univariate_sign_sets``) has a significant voxel and they have
        at least one stable key neuron (``tables["key_neurons"]``). The
        pipeline's ``glm_beta``, ``glm_t`` and ``glm_sign_sets`` come from
        one GLM of these atoms only (``[pipeline] glm_mode``); the rows of
        the other atoms are 0.
    glm_univariate_t, glm_univariate_sign_sets : ndarray (n_atoms, n_voxels) or None
        The pipeline's first stage: one GLM per atom, every atom (t-values
        and signed FDR voxel sets as in ``glm_t``, ``glm_sign_sets``).
    encoder_r : ndarray (n_voxels,) or None
        **The encoder's score** per voxel: the mean over held-out runs of the
        within-run Pearson r between the BOLD and the encoder's nested
        out-of-fold predictions (one run left out at a time, the ridge
        penalties chosen inside the training runs; each run's constant,
        linear trend, cosine drifts and confounds removed from predictions
        and BOLD alike, see :func:`nilearn_vlm.stats.permutation_null`): the
        statistic that ``encoder_p`` tests. NaN for voxels that cannot be
        scored (``meta["unscored_voxels"]`` counts them). Folders written
        before format 4 hold the r pooled over runs here.
    encoder_cv_r2 : ndarray (n_voxels,) or None
        Mean cross-validated R^2 at the chosen penalty (``VoxelEncoder.cv_scores_``,
        the criterion of the penalty choice: optimistic, not a score to
        report). Format 1-3 folders' ``encoder_scores`` load here.
    encoder_scores : ndarray (n_voxels,) or None
        Alias of ``encoder_r`` (read and write), kept for code written before
        format 4; new code reads ``encoder_r``.
    encoder_alpha : ndarray (n_voxels,) or None
        Ridge penalty chosen per voxel.
    encoder_p : ndarray (n_voxels,) or None
        p-value of ``encoder_r`` per voxel against the cross-fitted
        circular-shift null (:func:`nilearn_vlm.encoding.out_of_fold_null`:
        each run's BOLD shifted and the folds refitted per shift), uncorrected.
    encoder_p_fwe : ndarray (n_voxels,) or None
        The same, family-wise corrected over voxels (max statistic).
    unit_voxel_topk : dict or None
        ``{"index": int (k, n_voxels), "value": float (k, n_voxels)}``: the k
        units of strongest signed association per voxel (indices into
        ``unit_names``).
    network_labels : dict of str to AtlasLabels
        Atlas labels on ``space``'s voxels, by atlas name.
    layer_scores : dict of str to ndarray (n_voxels,)
        A per-voxel score per layer or site (for layer-preference maps).
    layer_fold_scores : dict of str to ndarray (n_folds, n_voxels)
        The same score computed within each cross-validation fold, per layer
        or site (for intervals over runs). The pipeline's folds are the runs
        in the order of ``run_labels``, or 4 contiguous blocks of the scans
        when there is a single run. NaN on voxels not fitted.
    runs : ndarray of int (n_scans,) or None
        Run of each scan (the rows of ``atom_timecourses``), numbered 1, 2,
        ... in the order of ``run_labels``.
    run_labels : list or None
        The runs' own labels (from the events' ``run`` column), JSON values.
    glm_sign_sets_fwe : ndarray of int8 (n_regressors, n_voxels) or None
        Like ``glm_sign_sets`` at a family-wise threshold per map
        (Bonferroni 0.05 over the map's voxels): sets with few false-positive
        voxels, which the polarity analysis counts.
    glm_sign_sets_loro : ndarray of int8 (n_runs, n_regressors, n_voxels) or None
        ``glm_sign_sets_fwe`` of the GLM refitted with each run left out
        (leave-one-run-out jackknife of anything counted from the sets).
    block_runs : ndarray of int (n_blocks,) or None
        Run (numbered as ``runs``) of each time block of the block sums:
        contiguous blocks of scans inside runs
        (:func:`nilearn_vlm.analyses.time_blocks`), the unit the paired
        tests resample.
    bold_block_sums : ndarray of float32 (3, n_blocks, n_voxels) or None
        ``n``, ``sum y``, ``sum y^2`` per block of the run-centred BOLD
        (:func:`nilearn_vlm.analyses.bold_block_sums`); NaN on voxels not
        kept.
    stream_block_sums : dict of str to ndarray of float32 (3, n_blocks, n_voxels)
        Per stream of the units table (and ``"all"``: every unit together),
        ``sum p``, ``sum p^2``, ``sum p y`` per block of the held-out
        predictions of a ridge on the stream's units reduced to a fixed
        number of components inside the training runs
        (:func:`nilearn_vlm.analyses.prediction_block_sums`,
        :func:`nilearn_vlm.analyses.heldout_predictions`). NaN on voxels
        not kept.
    stream_layer_r : dict of str to ndarray of float32 (n_layers, n_voxels)
        Per stream, the within-run r of the same held-out predictions with
        each of the stream's layers left out (layers in the units table's
        order): the delete-one-layer jackknife of a model's units.
    stream_layer_sse : dict of str to ndarray of float32 (n_layers, n_voxels)
        ``"all"``: the held-out squared error (run-centred, summed over
        scans) of all units refitted without each layer of the model, the
        layers being the units table's (stream, layer) groups in order of
        first appearance (:func:`nilearn_vlm.analyses.layer_groups`,
        :func:`nilearn_vlm.analyses.layer_deleted_sse`): the delete-one-layer
        jackknife of the VLM-vs-unimodal test. NaN on voxels not kept.
    tables : dict of str to pandas.DataFrame
        Per-network tables, key-neuron tables, unit sign counts, ...;
        ``"atoms"``: one row per atom (:meth:`nilearn_vlm.SparseAtoms.atom_table`:
        key neurons, stability, the stated error bound, and the
        dictionary's ``n_iter``, ``converged``, ``tol_reached`` and
        ``objective``; the pipeline adds ``interpreted``).
    settings : dict
        JSON-able settings of the run (estimator parameters, thresholds).
    provenance : dict
        :func:`collect_provenance` output (package versions, weight digests,
        seeds); filled on creation when empty.
    timings : dict of str to float
        Seconds per pipeline step, in the order the steps ran.
    meta : dict
        Anything else JSON-able.

    Examples
    --------
    >>> import numpy as np
    >>> res = Results("toy", glm_t=np.zeros((2, 5)), atom_names=["a", "b"])
    >>> res.n_voxels, res.regressor_names
    (5, ['a', 'b'])
    """

    model: str
    subject: str = ""
    space: ImageSpace | None = None
    unit_names: list | None = None
    unit_sites: list | None = None
    units: pd.DataFrame | None = None
    atom_names: list | None = None
    atom_loadings: np.ndarray | None = None
    atom_timecourses: np.ndarray | None = None
    regressor_names: list | None = None
    glm_beta: np.ndarray | None = None
    glm_t: np.ndarray | None = None
    glm_sign_sets: np.ndarray | None = None
    encoder_scores: InitVar[np.ndarray | None] = None
    encoder_alpha: np.ndarray | None = None
    unit_voxel_topk: dict | None = None
    network_labels: dict = field(default_factory=dict)
    layer_scores: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    encoder_r: np.ndarray | None = None
    encoder_p: np.ndarray | None = None
    encoder_p_fwe: np.ndarray | None = None
    layer_fold_scores: dict = field(default_factory=dict)
    runs: np.ndarray | None = None
    run_labels: list | None = None
    timings: dict = field(default_factory=dict)
    glm_univariate_t: np.ndarray | None = None
    glm_univariate_sign_sets: np.ndarray | None = None
    atom_interpreted: np.ndarray | None = None
    glm_sign_sets_fwe: np.ndarray | None = None
    glm_sign_sets_loro: np.ndarray | None = None
    block_runs: np.ndarray | None = None
    bold_block_sums: np.ndarray | None = None
    stream_block_sums: dict = field(default_factory=dict)
    stream_layer_r: dict = field(default_factory=dict)
    stream_layer_sse: dict = field(default_factory=dict)
    encoder_cv_r2: np.ndarray | None = None

    def __post_init__(self, encoder_scores=None):
        if encoder_scores is not None and not isinstance(encoder_scores, property):
            if self.encoder_r is not None and not np.array_equal(np.asarray(encoder_scores), self.encoder_r,
                                                                 equal_nan=True):
                raise ValueError("encoder_scores is an alias of encoder_r: give one of them")
            self.encoder_r = encoder_scores
        for name in _ARRAYS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value))
        for name in ("glm_sign_sets", "glm_sign_sets_fwe", "glm_sign_sets_loro", "glm_univariate_sign_sets"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).astype(np.int8))
        if self.atom_interpreted is not None:
            self.atom_interpreted = self.atom_interpreted.astype(bool)
        self._set_units()
        if self.atom_names is None and self.n_atoms is not None:
            self.atom_names = [f"atom{i}" for i in range(self.n_atoms)]
        if self.regressor_names is None and self._n_regressors() is not None:
            n = self._n_regressors()
            if self.atom_names is not None and len(self.atom_names) == n:
                self.regressor_names = list(self.atom_names)
            else:
                self.regressor_names = [f"regressor{i}" for i in range(n)]
        self.layer_scores = {str(k): np.asarray(v, dtype=float).ravel() for k, v in self.layer_scores.items()}
        self.layer_fold_scores = {str(k): _float_array(v) for k, v in self.layer_fold_scores.items()}
        self.stream_block_sums = {str(k): _float_array(v) for k, v in self.stream_block_sums.items()}
        self.stream_layer_r = {str(k): _float_array(v) for k, v in self.stream_layer_r.items()}
        self.stream_layer_sse = {str(k): _float_array(v) for k, v in self.stream_layer_sse.items()}
        if self.run_labels is not None:
            self.run_labels = [v.item() if isinstance(v, np.generic) else v for v in self.run_labels]
        self.timings = {str(k): float(v) for k, v in self.timings.items()}
        if not self.provenance:
            self.provenance = collect_provenance()
        self.validate()

    def _set_units(self):
        """``units`` from the table or the names; ``unit_names`` and ``unit_sites`` from ``units``."""
        if self.units is None and self.unit_names is None:
            if self.unit_sites is not None:
                raise ValueError("unit_sites without unit_names: give units= (the units table) or unit_names=")
            return
        given = None if self.unit_names is None else [str(u) for u in self.unit_names]
        if self.units is None:
            self.units = units_table(given)
        else:
            self.units = as_units_table(self.units)
            if given is not None and given != self.units["name"].tolist():
                raise ValueError("unit_names disagree with units['name']; give one of them")
        sites = self.units["site"].tolist()
        if self.unit_sites is not None and [str(u) for u in self.unit_sites] != sites:
            raise ValueError("unit_sites disagree with the sites of the units; leave unit_sites out")
        self.unit_names, self.unit_sites = self.units["name"].tolist(), sites

    # ------------------------------------------------------------ sizes
    @property
    def n_units(self):
        """Number of units (None when unknown)."""
        if self.unit_names is not None:
            return len(self.unit_names)
        return None if self.atom_loadings is None else int(self.atom_loadings.shape[1])

    @property
    def n_atoms(self):
        """Number of atoms (None when there are none)."""
        if self.atom_loadings is not None:
            return int(self.atom_loadings.shape[0])
        if self.atom_timecourses is not None:
            return int(self.atom_timecourses.shape[1])
        return None if self.atom_names is None else len(self.atom_names)

    def _n_regressors(self):
        for name in ("glm_t", "glm_beta", "glm_sign_sets"):
            value = getattr(self, name)
            if value is not None:
                return int(np.atleast_2d(value).shape[0])
        return None

    @property
    def n_voxels(self):
        """Number of voxels of the maps (None when there are no maps)."""
        if self.space is not None:
            return self.space.n_voxels
        for arr in self._voxel_arrays().values():
            return int(arr.shape[-1])
        return None

    @property
    def sites(self):
        """Unique unit sites, in order of first appearance."""
        return list(dict.fromkeys(self.unit_sites or []))

    def _voxel_arrays(self):
        out = {n: getattr(self, n) for n in _VOXEL_ARRAYS}
        out = {k: v for k, v in out.items() if v is not None}
        for k, v in (self.unit_voxel_topk or {}).items():
            out[f"unit_voxel_topk[{k}]"] = np.asarray(v)
        for k, v in self.layer_scores.items():
            out[f"layer_scores[{k}]"] = v
        for k, v in self.layer_fold_scores.items():
            out[f"layer_fold_scores[{k}]"] = v
        for k, v in self.network_labels.items():
            out[f"network_labels[{k}]"] = v.labels
        out.update(_analysis_input_arrays(self))
        return out

    @classmethod
    def from_estimators(cls, model, subject="", atoms=None, glm=None, encoder=None, unit_names=None,
                        units=None, seeds=None, weight_digests=None, **fields_):
        """Collect the fitted pipeline's outputs.

        Parameters
        ----------
        model, subject : str
        atoms : fitted :class:`~nilearn_vlm.SparseAtoms` or None
            Gives ``atom_loadings`` (``loadings_``), ``atom_timecourses``
            (``atoms_`` transposed), ``atom_names``, the units (its units
            table ``units_``, else its unit names ``feature_names_in_``),
            ``tables["key_neurons"]`` and ``tables["atoms"]``.
        glm : fitted :class:`~nilearn_vlm.VoxelGLM` or None
            Gives ``glm_t``, ``glm_beta``, ``glm_sign_sets`` (``t_``,
            ``coef_``, ``signed_`` transposed to regressors x voxels),
            ``regressor_names`` (the atom names when the GLM ran on an array
            of the atoms) and the ``space``.
        encoder : fitted :class:`~nilearn_vlm.VoxelEncoder` or None
            Gives ``encoder_cv_r2`` (``cv_scores_``) and ``encoder_alpha``
            (the encoder's score, ``encoder_r``, comes from held-out runs:
            pass it as a field).
        unit_names : list of str or None
            Overrides the unit names.
        units : pandas.DataFrame or None
            Overrides the units table (``NeuronActivations.units_``, which
            has the model's exact depths).
        seeds, weight_digests : dict or None
            Recorded in ``provenance``.
        **fields_
            Any other :class:`Results` field (``layer_scores``, ``tables``, ...).

        Returns
        -------
        Results
        """
        kw = dict(fields_)
        settings = dict(kw.pop("settings", {}))
        if atoms is not None:
            kw["atom_loadings"] = np.asarray(atoms.loadings_)
            kw["atom_timecourses"] = np.asarray(atoms.atoms_).T
            kw["atom_names"] = [str(a) for a in atoms.atom_names_]
            names = getattr(atoms, "feature_names_in_", None)
            table = getattr(atoms, "units_", None)
            if units is None and unit_names is None and table is not None:
                units = table
            elif units is None and unit_names is None and names is not None:
                unit_names = [str(u) for u in names]
            if hasattr(atoms, "key_neuron_table"):
                kw.setdefault("tables", {})["key_neurons"] = atoms.key_neuron_table()
            if hasattr(atoms, "atom_table"):
                kw.setdefault("tables", {})["atoms"] = atoms.atom_table()
            settings["atoms"] = _json_params(atoms)
        if glm is not None:
            kw["glm_t"], kw["glm_beta"] = np.asarray(glm.t_).T, np.asarray(glm.coef_).T
            kw["glm_sign_sets"] = np.asarray(glm.signed_).T
            names = getattr(glm, "regressor_names_", None)
            if names is None:
                names = getattr(glm, "feature_names_in_", None)
            if names is None:
                names = [f"x{i}" for i in range(np.shape(glm.t_)[1])]
            names = [str(n) for n in names]
            default = all(n == f"x{i}" for i, n in enumerate(names))
            if default and atoms is not None and len(names) == len(kw["atom_names"]):
                names = list(kw["atom_names"])  # the GLM ran on the atoms (an array)
            kw["regressor_names"] = names
            kw.setdefault("space", ImageSpace.from_estimator(glm))
            settings["glm"] = _json_params(glm)
        if encoder is not None:
            kw["encoder_cv_r2"] = np.asarray(encoder.cv_scores_)
            kw["encoder_alpha"] = np.asarray(encoder.alpha_)
            kw.setdefault("space", ImageSpace.from_estimator(encoder))
            settings["encoder"] = _json_params(encoder)
        kw.setdefault("provenance", collect_provenance(seeds=seeds, weight_digests=weight_digests))
        return cls(model, subject, unit_names=unit_names, units=units, settings=settings, **kw)

    # ------------------------------------------------------------ checks
    def validate(self):
        """Check that shapes agree; raise ValueError naming the field.

        Returns
        -------
        self
        """
        check_results(self)
        return self

    # ------------------------------------------------------------ images
    def to_img(self, name):
        """Image of an array field in the input's kind.

        Parameters
        ----------
        name : str
            ``"glm_t"``, ``"glm_beta"``, ``"glm_sign_sets"``,
            ``"encoder_r"`` (alias ``"encoder_scores"``), ``"encoder_cv_r2"``,
            ``"encoder_alpha"``, ``"encoder_p"``, ``"encoder_p_fwe"`` or
            ``"layer_scores"`` (one map per layer).
        """
        if self.space is None:
            raise ValueError("this Results has no space: give space=ImageSpace.from_masker(...)")
        if name == "encoder_scores":
            name = "encoder_r"
        if name == "layer_scores":
            names = list(self.layer_scores)
            return self.space.inverse_transform(np.vstack([self.layer_scores[k] for k in names]), names=names)
        if name not in _VOXEL_ARRAYS:
            raise ValueError(f"{name!r} is not a per-voxel field; one of {list(_VOXEL_ARRAYS) + ['layer_scores']}")
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"Results.{name} is empty")
        names = self.regressor_names if name.startswith("glm") else None
        return self.space.inverse_transform(value, names=names)

    def layer_preference_img(self, threshold=None):
        """Image of the best layer per voxel from ``layer_scores``.

        Parameters
        ----------
        threshold : float or None
            Voxels whose best score is below it get 0.

        Returns
        -------
        img : image (or array for array data)
            1-based index of the best layer, 0 where none.
        names : list of str
            Layer ``k`` of the image is ``names[k - 1]``.
        """
        from nilearn_vlm.networks import layer_preference_img

        if self.space is None or not self.layer_scores:
            raise ValueError("layer_preference_img needs space and layer_scores")
        return layer_preference_img(self.layer_scores, self.space, threshold=threshold)

    def add_network_tables(self, atlases, level="canonical"):
        """Load atlases on ``space`` and tabulate ``glm_sign_sets`` per network.

        Stores ``network_labels[atlas]``, ``tables["network_counts"]`` and
        ``tables["network_dice"]`` (see :func:`nilearn_vlm.networks.network_table`).

        Returns
        -------
        self
        """
        from nilearn_vlm.networks import load_atlases, network_table

        if self.space is None or self.glm_sign_sets is None:
            raise ValueError("add_network_tables needs space and glm_sign_sets")
        labels = load_atlases(atlases, self.space)
        for lab in labels:
            self.network_labels[lab.atlas] = lab
        kw = {"target": self.space, "level": level, "map_names": self.regressor_names}
        self.tables["network_counts"] = network_table(self.glm_sign_sets, labels, **kw)
        self.tables["network_dice"] = network_table(self.glm_sign_sets, labels, kind="dice", **kw)
        return self

    # ------------------------------------------------------------ disk
    def save(self, folder):
        """Write the results to ``folder`` (created; existing files are replaced).

        The layout (format :data:`FORMAT_VERSION`) is described in
        :mod:`nilearn_vlm.results`; nothing is pickled.

        Returns
        -------
        pathlib.Path
        """
        self.validate()
        return save_results(self, folder)

    @classmethod
    def load(cls, folder):
        """Read a folder written by :meth:`save` (this version's format or an earlier one).

        Examples
        --------
        >>> import tempfile, numpy as np
        >>> res = Results("toy", glm_sign_sets=np.array([[1, 0, -1]]), timings={"fit": 1.5})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = Results.load(res.save(d))
        >>> back.glm_sign_sets.tolist(), back.timings
        ([[1, 0, -1]], {'fit': 1.5})
        """
        return cls(**load_fields(folder))

    def __repr__(self):
        parts = [f"model={self.model!r}", f"subject={self.subject!r}"]
        for f in fields(self):
            if f.name in ("model", "subject", "settings", "provenance", "meta"):
                continue
            v = getattr(self, f.name)
            if v is None or (isinstance(v, dict) and not v):
                continue
            if isinstance(v, np.ndarray):
                parts.append(f"{f.name}={v.shape}")
            elif isinstance(v, pd.DataFrame):
                parts.append(f"{f.name}=<{len(v)}>")
            elif isinstance(v, dict):
                parts.append(f"{f.name}=[{', '.join(map(str, v))}]")
            elif isinstance(v, list):
                parts.append(f"{f.name}=<{len(v)}>")
            else:
                parts.append(f"{f.name}={v!r}")
        return f"Results({', '.join(parts)})"


def _get_encoder_scores(self):
    return self.encoder_r


def _set_encoder_scores(self, value):
    self.encoder_r = None if value is None else np.asarray(value)


Results.encoder_scores = property(
    _get_encoder_scores, _set_encoder_scores,
    doc="Alias of ``encoder_r`` (the encoder's within-run out-of-fold r), kept for code written before format 4.")


def _float_array(value):
    arr = np.asarray(value)
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(float)
