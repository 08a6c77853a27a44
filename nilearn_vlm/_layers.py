"""The import floors of the core: which module may import which.

The one table of the layout. ``tests/test_layers.py`` walks the imports of
every core module with :mod:`ast` and checks them against it; the
documentation's architecture page is generated from it
(:func:`architecture_tables`, :func:`data_path_table`). A new top-level
module or subpackage of ``nilearn_vlm`` must be placed on a floor here, or
the test fails.

Rules:

- a module imports only modules of its own floor or of floors below it;
- no import cycle among core modules (function-local imports included);
- nobody imports the package ``nilearn_vlm`` itself (:data:`FACADE`, the
  public names re-exported for users): core modules import the submodule
  that defines a name;
- a module listed in :data:`ONLY_IMPORTED_BY` is imported by the modules
  listed there only (and by tests, docs and plugins);
- plugins and the documentation's example code import public modules and
  public names only (no ``nilearn_vlm._x`` or ``nilearn_vlm.x._y``).

This module imports nothing, so any floor may read it.
"""

#: the package whose ``__init__`` is the public facade: it may import any
#: floor (lazily); no core module imports it
FACADE = "nilearn_vlm"

#: (floor, what it holds, {top-level module or subpackage: what it holds}),
#: lowest floor first
FLOORS = (
    (
        "ground",
        "the vocabularies and contracts every step shares",
        {
            "_version": "the version string",
            "_layers": "this table of floors",
            "_backend": "array backends (NumPy, torch on CPU or CUDA) of the GEMM/FFT-bound steps",
            "_utils": "shared numerics: z-scores, Pearson r, bootstraps, CV folds, byte sizes",
            "_provenance": "package versions, seeds, weight digests, fingerprints of input files",
            "_store": "the store: locks, atomic writes, checksums, reserved arrays, folder entries",
            "_cache": "the on-disk activation cache",
            "parallel": "execution backends (joblib, dask) and chunked maps",
            "hookspecs": "the plugin hooks (`hookimpl`, `register_*` specs)",
            "plugins": "the plugin host: entry points, registries, look-ups",
            "spaces": "image kinds, maskers, CIFTI axes, target loading: the only image I/O",
            "units": "`Site`, unit names, the units table (stream, layer, depth, kind)",
            "stimuli": "events tables, images, video frames, HCP movie stimuli",
            "adapters": "the model adapter contract, pooling, the torch capture helper",
        },
    ),
    (
        "estimators",
        "the steps of the data path, the scikit-learn way; atlases and statistics",
        {
            "extraction": "`NeuronActivations`: stimuli to unit activations",
            "timeseries": "`TRAligner`: event-level units to the TR grid (HRF or FIR)",
            "decomposition": "`SparseAtoms`: dictionary learning over units",
            "_dictionary": "the dictionary solver: varimax start, screened FISTA codes, stopping rule",
            "_stability": "key neurons by complementary-pairs stability selection",
            "_atom_tables": "the key-neuron, atom and attribution tables of `SparseAtoms`",
            "encoding": "`VoxelEncoder`: ridge with per-voxel alpha; the voxel estimators' base",
            "glm": "`VoxelGLM`: GLM t-maps of given regressors",
            "_glm_solver": "the GLM's least-squares solver",
            "_glm_univariate": "the GLM's one-regressor-at-a-time mode",
            "_glm_noise": "the calibrated noise model: global AR prewhitening, autocovariances, bias matrix",
            "_glm_calibrated": "the calibrated GLM: Toeplitz sandwich variances, Satterthwaite dof",
            "_maps_calibrated": "calibrated unit x voxel maps",
            "_topk": "the running top-k of unit x voxel maps",
            "maps": "unit x voxel maps",
            "stats": "nulls, corrections, clusters, bootstraps, group tests",
            "networks": "atlases (built-in atlas plugin) and per-network tables",
        },
    ),
    (
        "results",
        "what a run produced, and the analysis contract that reads it",
        {
            "results": "`Results`: everything a report needs, saved and loaded as a folder",
            "_results_io": "the folder format of `Results`",
            "_results_inputs": "checks of the analysis inputs `Results` carries",
            "_results_checks": "the shape checks of `Results.validate`",
            "analyses": "the analysis contract and the helpers analyses share",
        },
    ),
    (
        "orchestration",
        "settings and the runs that wire the estimators together",
        {
            "settings": "the one settings schema: study-file keys, defaults, validation, docs",
            "pipeline": "`fit_subject`: the whole path for one subject and one model",
            "study": "study files and runs over subjects x models",
            "calibration": "`calibrate`: random designs on one's own data through the pipeline's inference",
        },
    ),
    (
        "surface",
        "what users call: report, command line, demo data, test helpers",
        {
            "report": "the HTML report, from `Results` alone",
            "datasets": "the embedded simulated study (demo data)",
            "demo": "the demo: the whole path on the embedded study",
            "cli": "`nilearn-vlm`: one thin module per subcommand",
            "testing": "`check_adapter` and the toy adapter, for plugin authors and tests",
        },
    ),
)

#: module -> the only core modules that may import it (tests, docs and plugins
#: may import it too); a module may always import its own submodules
ONLY_IMPORTED_BY = {
    "datasets": ("demo", "cli.demo"),
    # the demo's findings section plants effects with the analyses' simulated subjects
    "testing": ("demo",),
}


def floor_names():
    """Names of the floors, lowest first."""
    return [name for name, _, _ in FLOORS]


def floor_of(module):
    """Floor of a core module (dotted name), or None if it is not placed.

    Examples
    --------
    >>> floor_of("nilearn_vlm.encoding._encoder")
    'estimators'
    >>> floor_of("nilearn_vlm.cli.demo")
    'surface'
    >>> floor_of("nilearn_vlm.nowhere") is None
    True
    """
    parts = module.split(".")
    if parts[0] != FACADE or len(parts) < 2:
        return None
    for name, _, members in FLOORS:
        if parts[1] in members:
            return name
    return None


def architecture_tables():
    """The floor table of the architecture page, as Markdown.

    Returns
    -------
    str
        A table of the floors (highest first, as a building is drawn) with
        their modules and what they may import; then what each module holds;
        then the restricted modules.
    """
    names = floor_names()
    lines = ["| floor | modules | may import |", "|---|---|---|"]
    for i, (name, _, members) in reversed(list(enumerate(FLOORS))):
        modules = ", ".join(f"`{m}`" for m in members)
        may = ", ".join(["its own floor", *names[:i][::-1]])
        lines.append(f"| **{name}** | {modules} | {may} |")
    for name, about, members in reversed(FLOORS):
        lines += ["", f"**{name}**: {about}.", ""]
        lines += [f"- `{FACADE}.{m}`: {what}" for m, what in members.items()]
    lines += ["", "Restricted modules:", ""]
    for module, importers in ONLY_IMPORTED_BY.items():
        who = " and ".join(f"`{FACADE}.{m}`" for m in importers)
        who = f"only {who} (and tests, docs, plugins)" if who else "no core module (only tests, docs, plugins)"
        lines.append(f"- `{FACADE}.{module}` is imported by {who}.")
    return "\n".join(lines) + "\n"


#: (step of the data path, module, its public names for the step), in order
DATA_PATH = (
    ("stimuli: events tables (onset, duration, image, text, run)", "stimuli", ("load_events", "check_events")),
    ("model adapters (plugins), sites and pooling", "adapters", ("BaseAdapter", "pool", "capture")),
    ("unit names and the units table", "units", ("Site", "units_table")),
    ("unit activations, cached on disk", "extraction", ("NeuronActivations",)),
    ("units on the TR grid (HRF or FIR)", "timeseries", ("TRAligner",)),
    ("sparse atoms and key neurons", "decomposition", ("SparseAtoms",)),
    ("fMRI targets: images, maskers, spaces", "spaces", ("load_targets", "ImageSpace")),
    ("ridge encoding, per-voxel alpha", "encoding", ("VoxelEncoder",)),
    ("GLM t-maps, signed voxel sets", "glm", ("VoxelGLM",)),
    ("unit x voxel maps", "maps", ("unit_voxel_maps",)),
    ("atlases and per-network tables", "networks", ("load_atlases", "network_table")),
    ("nulls, corrections, bootstraps", "stats", ("permutation_null", "fdr", "bootstrap_ci")),
    ("everything one run produced", "results", ("Results",)),
    ("analyses (plugins) on results", "analyses", ("BaseAnalysis", "run_analyses")),
    ("settings of a run", "settings", ("PipelineSettings",)),
    ("one subject x one model", "pipeline", ("fit_subject",)),
    ("a study file: subjects x models", "study", ("load_study", "run_study")),
    ("the HTML report", "report", ("build_report",)),
    ("the command line", "cli", ("main",)),
)


def data_path_table():
    """Where each step of the data path lives, as a Markdown table.

    Returns
    -------
    str
        Step, module and public names, floor.
    """
    lines = ["| step | where | floor |", "|---|---|---|"]
    for step, module, names in DATA_PATH:
        where = ", ".join(f"{{py:obj}}`{FACADE}.{module}.{n}`" for n in names)
        lines.append(f"| {step} | {where} | {floor_of(f'{FACADE}.{module}')} |")
    return "\n".join(lines) + "\n"
