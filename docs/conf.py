"""Sphinx configuration of the nilearn-vlm documentation.

Build (offline, warnings as errors, as CI does)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys

# the package is installed (editable) in the environment; this fallback lets a
# plain checkout build the docs too
sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import nilearn_vlm  # noqa: E402

project = "nilearn-vlm"
author = "nilearn-vlm developers"
copyright = "nilearn-vlm developers, BSD-3-Clause"
release = nilearn_vlm.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "plugin-example",
    "Thumbs.db",
    ".DS_Store",
]

# No network: no intersphinx, no remote images.
intersphinx_mapping = {}

# numpy-style docstrings (numpydoc sections) through napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = False
napoleon_use_ivar = True
napoleon_custom_sections = [("Yields", "returns_style")]

autosummary_generate = False
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "none"
autodoc_mock_imports = ["torch", "torchvision", "open_clip", "transformers"]

# The Markdown pages link files of the repository (plugin folders, tests):
# keep those as plain links instead of cross-reference warnings.
myst_heading_anchors = 3
# Type fields such as "shape (n_scans, n_voxels)" make every word a cross-reference;
# "n_voxels" is both AtlasLabels.n_voxels and Results.n_voxels, an ambiguity that
# is harmless (ref.python warns only about ambiguous targets when nitpicky is off).
suppress_warnings = ["myst.xref_missing", "ref.python"]

html_theme = "alabaster"
html_title = f"nilearn-vlm {release}"
html_static_path = []
html_theme_options = {"description": "Neuron-level fMRI encoding with vision-language models"}


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing setters (set_fit_request, ...) are
    # generated methods whose docstrings point into sklearn's own docs
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def _study_file_reference(app, docname, source):
    # the keys of the study file, generated from the settings schema
    if docname == "study_file":
        from nilearn_vlm.settings import study_file_reference

        source[0] = source[0].replace("<!-- study-file-reference -->", study_file_reference())


def _architecture_tables(app, docname, source):
    # the floors and the data path, generated from the table the import test checks
    if docname == "architecture":
        from nilearn_vlm._layers import architecture_tables, data_path_table

        source[0] = source[0].replace("<!-- floors -->", architecture_tables())
        source[0] = source[0].replace("<!-- data-path -->", data_path_table())


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("source-read", _study_file_reference)
    app.connect("source-read", _architecture_tables)
