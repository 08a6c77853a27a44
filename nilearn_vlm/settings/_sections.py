"""The sections of a study file, one dataclass each: every key declared once."""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from nilearn_vlm._store import component_problem
from nilearn_vlm.adapters import check_pooling
from nilearn_vlm.encoding import DEFAULT_ALPHAS
from nilearn_vlm.parallel import COMPUTE_DEFAULTS, ENGINES, check_compute
from nilearn_vlm.timeseries import HRF_MODELS
from nilearn_vlm.settings._build import build_estimators, check_plugin_names
from nilearn_vlm.settings._schema import SettingsError, check_section, section, section_keys, setting

#: Atlases read by default in MNI152 volumes (networks of arXiv 2510.16870).
DEFAULT_MNI_ATLASES = ("seitzman2018", "language_mni")

#: Default ridge penalties of the per-site encoders: the decades 1 ... 1e4 of
#: :data:`nilearn_vlm.encoding.DEFAULT_ALPHAS` (every second value from the
#: fifth: one nested leave-one-run-out fit per site, so a coarser grid).
SITE_ALPHAS = tuple(float(a) for a in DEFAULT_ALPHAS[4:13:2])

_POSITIVE = [Interval(Integral, 1, None, closed="left")]


def _positive_alphas(value):
    alphas = np.asarray(value, dtype=float)
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        return "must be a non-empty list of positive numbers (ridge penalties), e.g. [1.0, 10.0, 100.0]"
    return None


#: HRF models giving one regressor per unit (the pipeline's atoms, maps and
#: tables are per unit; the others give several columns per unit).
SINGLE_BASIS_HRFS = ("glover", "spm")


def _single_basis(value):
    if value in HRF_MODELS and value not in SINGLE_BASIS_HRFS:
        return (f"gives several regressors per unit, and the pipeline's atoms, maps and tables take one; "
                f"use one of {', '.join(SINGLE_BASIS_HRFS)} (TRAligner itself takes {value!r})")
    return None


def _pooling_problem(value):
    try:
        check_pooling(value)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _folder_name(value):
    """A subject id or a model label names a folder of the results: one plain name."""
    return None if value == "" else component_problem(value)


def _analyses_problem(value):
    if isinstance(value, str) and value != "all":
        return f'must be "all" or a list of analysis names, e.g. run = [{value!r}]'
    return None


def _atlases_from_atlas(value):
    """The ``atlases`` value of an old ``atlas`` value."""
    if value in ("none", None):
        return []
    return [value] if isinstance(value, str) else list(value)


def as_dict(obj, role=None):
    """A section as a JSON-able dict (tuples and arrays as lists, paths as strings).

    Parameters
    ----------
    obj : section instance
    role : {"analysis", "execution"}, optional
        Keep only the keys of this role (``"analysis"``: those the numbers
        depend on, e.g. to fingerprint a result).
    """

    def plain(v):
        if isinstance(v, (tuple, list, np.ndarray)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, np.generic):
            return v.item()
        if hasattr(v, "__fspath__"):
            return str(v)
        return v

    return {name: plain(getattr(obj, name)) for name, f in section_keys(type(obj)).items()
            if role is None or f.metadata["role"] == role}


@section("study")
@dataclasses.dataclass
class StudySettings:
    """``[study]``: the study's name, its output folder, the repetition time."""

    t_r: float = setting(
        doc="Repetition time of the fMRI runs (seconds).", types=("float",),
        check=[Interval(Real, 0, None, closed="neither")], example=2.0,
        to=("aligner.t_r", "glm.t_r", "encoder.t_r", "site_encoder.t_r"),
    )
    name: str = setting("", "Name of the study (in the summary).", types=("str",), role="execution",
                        default_text="the study file's name without `.toml`")
    output: str = setting("nilearn_vlm_results", "Folder of the results, relative to the study file.",
                          types=("path",), path="new", role="execution")
    verbose: int = setting(1, "Progress messages: 0 prints nothing, 1 each step with its duration "
                           "(`nilearn-vlm run --quiet` sets 0).", types=("int",),
                           check=[Interval(Integral, 0, None, closed="left")], role="execution")
    ignore_header_t_r: bool = setting(
        False, "Use `t_r` even where a run's image header records another repetition time. By default "
        "such a mismatch is an error, found before any extraction (NIfTI `pixdim[4]` in the unit of "
        "`xyzt_units`, the CIFTI series step); set it only when the headers are known to be wrong.",
        types=("bool",), role="execution")


@section("stimuli")
@dataclasses.dataclass
class StimuliSettings:
    """``[stimuli]``: an events table, or a video with subtitles.

    Give exactly one of ``events`` and ``video``.
    """

    events: str | None = setting(None, "BIDS-like events table (onset, duration, image and/or text, "
                                 "run; see `nilearn_vlm.stimuli.load_events`).", types=("path",),
                                 path="file")
    image_root: str | None = setting(None, "Folder the events' image paths are relative to "
                                     "(default: the events file's folder).", types=("path",), path="dir")
    video: str | None = setting(None, "A video, cut into one event per `1 / rate` seconds "
                                "(`nilearn_vlm.stimuli.events_from_video`; one run).", types=("path",),
                                path="file")
    subtitles: str | None = setting(None, "Subtitles (.srt) of the video: the text of each event.",
                                    types=("path",), path="file")
    rate: float = setting(1.0, "Events per second cut from the video.", types=("float",),
                          check=[Interval(Real, 0, None, closed="neither")])

    def _check_section(self, where):
        if (self.events is None) == (self.video is None):
            raise SettingsError(where, "give exactly one of 'events' (a BIDS-like events.tsv) or 'video' "
                                "(with 'subtitles')")
        if self.events is not None:
            for key in ("subtitles",):
                if getattr(self, key) is not None:
                    raise SettingsError(f"{where}.{key}", "only used with 'video'; drop it or give a video")
        elif self.image_root is not None:
            raise SettingsError(f"{where}.image_root", "only used with 'events'; drop it")


@section("fmri")
@dataclasses.dataclass
class FmriSettings:
    """``[fmri]``: the runs of every subject found in a BIDS (derivatives) folder.

    Give either this section or ``[[subjects]]`` tables.
    """

    bids: str = setting(doc="BIDS (derivatives) folder holding `sub-*/func/*_bold.nii[.gz]` or "
                        "`*.dtseries.nii` files.", types=("path",), path="dir",
                        example="derivatives/fmriprep")
    space: str | None = setting(None, "Keep the runs of this `space-` entity only.", types=("str",))
    task: str | None = setting(None, "Keep the runs of this `task-` entity only.", types=("str",))
    mask: str | None = setting(None, "Brain mask of every subject (default: computed from the "
                               "first run).", types=("path",), path="file")


@section("subjects", array=True)
@dataclasses.dataclass
class SubjectSpec:
    """``[[subjects]]``: one subject, its run images (in run order) and an optional mask."""

    id: str = setting(doc="Subject label (`sub-<id>` folder of its results; one plain name).",
                      types=("str", "int"), role="execution", example="01", check=_folder_name)
    bold: list = setting(doc="The run images, in run order (4D NIfTI, CIFTI dtseries, ...).",
                         types=("paths", "path"), path="file", example=["run-1_bold.nii.gz", "run-2_bold.nii.gz"])
    mask: str | None = setting(None, "Brain mask (default: computed from the first run).",
                               types=("path",), path="file")

    def __post_init__(self):
        self.id = str(self.id)
        if isinstance(self.bold, (str, bytes)) or hasattr(self.bold, "__fspath__"):
            self.bold = [str(self.bold)]
        self.bold = [str(b) for b in self.bold]
        if self.mask is not None:
            self.mask = str(self.mask)


@section("models", array=True)
@dataclasses.dataclass
class ModelSpec:
    """``[[models]]``: one model, as :class:`~nilearn_vlm.NeuronActivations` runs it."""

    name: str = setting(doc="Adapter plugin (`nilearn-vlm plugins` lists them).", types=("str",),
                        to=("extractor.model",), example="clip")
    params: dict = setting({}, "Parameters of the adapter (weights, architecture, seed, ...).",
                           types=("table",), to=("extractor.model_params",))
    sites: object = setting("default", "Site selector: \"default\", \"all\", a pattern such as "
                            "\"vision.*.ffn\", or a list of them.", types=("str", "list"), items="str",
                            to=("extractor.sites",))
    pooling: object = setting("mean", "Token pooling rule, or a table {stream = rule}.",
                              types=("str", "table"), to=("extractor.pooling",), check=_pooling_problem)
    label: str = setting("", "Folder name of the model's results (one plain name).", types=("str",),
                         role="execution", default_text="the model's name", check=_folder_name)

    def __post_init__(self):
        self.label = self.label or self.name

    def validate(self, where="model", check_plugins=True):
        """Check every key, building :class:`~nilearn_vlm.NeuronActivations`; raises :class:`SettingsError`.

        Parameters
        ----------
        where : str, default="model"
            The table as errors name it (``"models[0]"``).
        check_plugins : bool, default=True
            Check that ``name`` is an installed adapter plugin.
        """
        check_section(self, where)
        if check_plugins:
            check_plugin_names("adapter", self.name, f"{where}.name")


@section("pipeline")
@dataclasses.dataclass
class PipelineSettings:
    """``[pipeline]``: the settings of :func:`~nilearn_vlm.pipeline.fit_subject`.

    Each uncertain choice of the paper is one key; each key has the name of
    the estimator parameter it sets (with the estimator's prefix where two
    estimators share a parameter name: ``atom_alpha``, ``glm_alpha``).
    :meth:`~nilearn_vlm.settings.PipelineSettings.validate` checks every key
    by building the estimators;
    :meth:`~nilearn_vlm.settings.PipelineSettings.estimators` builds them
    (unfitted) for the pipeline.

    Examples
    --------
    >>> from nilearn_vlm.settings import PipelineSettings
    >>> settings = PipelineSettings(n_atoms=8, glm_alpha=0.01)
    >>> settings.validate(t_r=2.0)
    >>> settings.estimators(t_r=2.0)["glm"].alpha
    0.01
    """

    hrf_model: str = setting("glover", "HRF model of the alignment to the TR grid, one regressor per "
                             "unit: \"glover\" or \"spm\".", types=("str",), to=("aligner.hrf_model",),
                             check=_single_basis, renamed=("hrf",))
    n_atoms: int = setting(64, "Atoms of the dictionary (64 in this line of work).", types=("int",),
                           to=("atoms.n_atoms",))
    atom_alpha: float = setting(0.1, "Sparsity (l1 penalty) of the atoms' codes.", types=("float",),
                                to=("atoms.alpha",))
    atom_max_iter: int = setting(500, "A cap on the iterations of dictionary learning; its stopping rule "
                                 "is `atom_tol`, and reaching the cap first warns.", types=("int",),
                                 to=("atoms.max_iter",))
    atom_tol: float = setting(1e-5, "Stopping rule of dictionary learning: stop when the relative decrease "
                              "of its objective is at most `atom_tol`.", types=("float",),
                              to=("atoms.tol",))
    glm_alpha: float = setting(0.05, "FDR level of the GLM's positive and negative voxel sets.",
                               types=("float",), to=("glm.alpha",), renamed=("fdr",))
    glm_mode: str = setting(
        "joint", "The GLM of the maps, over the interpreted atoms (those whose univariate map has a "
        "significant voxel and that have a stable key neuron): \"joint\", one model of them all (partial "
        "effects: an atom's map does not pick up the networks of atoms it correlates with in-sample); "
        "\"univariate\", one model per atom (their univariate maps).",
        types=("str",), to=("glm.mode",))
    inference: str = setting(
        "calibrated", "Inference of the GLM maps and of the unit x voxel maps. \"calibrated\": p-values "
        "that hold on real fMRI noise (global AR(2) prewhitening, per-voxel Toeplitz sandwich variance "
        "with the residual bias removed, Satterthwaite dof; `nilearn-vlm calibrate` measures it on your "
        "own resting-state data); \"ar1\": the earlier inference, nilearn's AR(1) GLM and the unit "
        "maps' Pearson t-test on n_scans - 2 dof (too many false positives on real noise: voxelwise "
        "p < 0.05 rates of 0.06-0.15 and up to 69% of null maps with an FDR discovery).",
        types=("str",), to=("glm.noise_model",), check=[StrOptions({"calibrated", "ar1"})])
    high_pass: float | None = setting(
        0.01, "High-pass cutoff (Hz), the same for every estimator that filters: the GLM's cosine "
        "drift terms, and the encoders' cosine regressors removed run by run from units and BOLD alike "
        "before fitting and before scoring (the GLM and the encoders clean the data the same way).",
        types=("float",), to=("glm.high_pass", "encoder.high_pass", "site_encoder.high_pass"))
    alphas: tuple = setting(tuple(float(a) for a in DEFAULT_ALPHAS),
                            "Ridge penalties of the encoder (one chosen per voxel).", types=("list",),
                            items="float", to=("encoder.alphas",), check=_positive_alphas,
                            default_text="`nilearn_vlm.encoding.DEFAULT_ALPHAS`: 15 values, "
                            "half-decade steps from 1e-2 to 1e5")
    encode_sites: bool = setting(True, "Fit one encoder per site for layer curves and "
                                 "layer-preference maps.", types=("bool",))
    site_alphas: tuple = setting(SITE_ALPHAS, "Ridge penalties of the per-site encoders.",
                                 types=("list",), items="float", to=("site_encoder.alphas",),
                                 check=_positive_alphas,
                                 default_text="`[1.0, 10.0, 100.0, 1000.0, 10000.0]`, the decades "
                                 "1 ... 1e4 of the encoder's grid")
    site_voxels: str = setting(
        "relevant", "Voxels of the per-site encoders and of the analyses' delete-one-layer r: "
        "\"relevant\" are those of the atlases' "
        "canonical networks and those the atom encoder predicts (circular-shift p < 0.05, "
        "uncorrected), the others get NaN layer scores; \"all\" fits every voxel (slower).",
        types=("str",), check=[StrOptions({"relevant", "all"})])
    analysis_inputs: bool = setting(
        True, "Keep what the analyses resample (`nilearn_vlm.pipeline.analysis_inputs`): the GLM "
        "refitted without each run (family-wise sets), per-stream held-out predictions reduced to "
        "sums per time block, and the delete-one-layer jackknife of each stream's r and of all units' "
        "squared error; about 3 GLM fits and two small ridges per layer more.",
        types=("bool",))
    top_k: int = setting(10, "Units kept per voxel in the unit x voxel maps.", types=("int",),
                         check=_POSITIVE)
    n_permutations: int = setting(200, "Circular shifts of the null of the encoder's out-of-fold "
                                  "correlations (each run's BOLD shifted and the folds refitted per "
                                  "shift: nilearn_vlm.encoding.out_of_fold_null).", types=("int",),
                                  check=_POSITIVE)
    atlases: tuple = setting(DEFAULT_MNI_ATLASES, "Atlas plugins of the network tables ([] for none).",
                             types=("list",), items="str", renamed=("atlas",),
                             migrate=_atlases_from_atlas)
    seed: int = setting(0, "Seed of the dictionary learning and of the circular-shift null.",
                        types=("int",), to=("atoms.random_state",))

    def to_dict(self):
        """The settings as a JSON-able dict (saved with the results)."""
        return as_dict(self)

    def validate(self, t_r=None, check_plugins=True):
        """Check every key, by building the estimators it configures; raises :class:`SettingsError`.

        Parameters
        ----------
        t_r : float, optional
            Repetition time, checked with the estimators that take it.
        check_plugins : bool, default=True
            Check that the atlases are installed plugins.
        """
        check_section(self, "pipeline")
        self.estimators(t_r)
        if check_plugins:
            check_plugin_names("atlas", self.atlases, "pipeline.atlases")

    def unit_map_options(self, t_r=None):
        """Keyword arguments of :func:`~nilearn_vlm.maps.unit_voxel_maps` these settings give.

        The inference (``"calibrated"`` or ``"iid"`` for ``inference = "ar1"``),
        the drifts of the GLM (``t_r``, ``high_pass``) and ``top_k``; the
        pipeline adds the data, the runs and the unit names.

        Parameters
        ----------
        t_r : float, optional

        Returns
        -------
        dict

        Examples
        --------
        >>> from nilearn_vlm.settings import PipelineSettings
        >>> PipelineSettings(inference="ar1").unit_map_options(2.0)["inference"]
        'iid'
        """
        glm = self.estimators(t_r)["glm"]
        return {"inference": "calibrated" if self.inference == "calibrated" else "iid",
                "t_r": t_r, "high_pass": glm.high_pass, "top_k": self.top_k}

    def estimators(self, t_r=None):
        """The estimators these settings configure, unfitted, by role.

        Parameters
        ----------
        t_r : float, optional
            Repetition time (``[study] t_r``), given to every estimator that takes it.

        Returns
        -------
        dict
            ``{"aligner": TRAligner, "atoms": SparseAtoms, "glm": VoxelGLM,
            "encoder": VoxelEncoder, "site_encoder": VoxelEncoder}``; data
            parameters (events, unit names) are set by the pipeline.
        """
        return build_estimators(self, t_r, section_keys(StudySettings)["t_r"].metadata["to"])


@section("analyses")
@dataclasses.dataclass
class AnalysesSettings:
    """``[analyses]``: the analysis plugins run on each result (saved in its `analyses/` folder)."""

    run: object = setting("all", "\"all\" (every installed analysis the results allow) or a list of "
                          "analysis names ([] for none).", types=("str", "list"), items="str",
                          check=_analyses_problem)


@section("compute")
@dataclasses.dataclass
class ComputeSettings:
    """``[compute]``: where subjects x models run (:mod:`nilearn_vlm.parallel`).

    The command line's ``--engine``, ``--scheduler`` and ``--n-workers``
    override these keys.
    """

    engine: str | None = setting(None, f"One of {', '.join(ENGINES)}.", types=("str",),
                                 role="execution", default_text="\"local\" (\"dask\" when a scheduler "
                                 "is given)")
    scheduler: str | None = setting(None, "Dask scheduler: \"tcp://host:8786\", a scheduler file "
                                    "(.json) or \"local\".", types=("str",), role="execution")
    n_workers: int | None = setting(None, "Local jobs, or workers of a local Dask cluster.",
                                    types=("int",), role="execution")
    threads_per_worker: int = setting(COMPUTE_DEFAULTS["threads_per_worker"], "Threads of each "
                                      "worker of a local Dask cluster.", types=("int",), role="execution")
    memory_limit: object = setting(COMPUTE_DEFAULTS["memory_limit"], "Memory of each worker of a local "
                                   "Dask cluster (\"4GB\", bytes, or \"auto\").", types=("str", "int"),
                                   role="execution")

    def _check_section(self, where):
        given = {k: v for k, v in as_dict(self).items() if v is not None}
        try:
            check_compute(given)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise SettingsError(key if key.startswith(where) else where, message or str(exc)) from None

    def options(self):
        """The validated options of :func:`nilearn_vlm.parallel.run_subjects` (defaults filled)."""
        return check_compute({k: v for k, v in as_dict(self).items() if v is not None})


#: The sections of a study file, in the order of the reference.
SECTIONS = {
    cls.__section__: cls
    for cls in (StudySettings, StimuliSettings, FmriSettings, SubjectSpec, ModelSpec, PipelineSettings,
                AnalysesSettings, ComputeSettings)
}
