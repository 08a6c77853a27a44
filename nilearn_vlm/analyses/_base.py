"""Base class of analyses, their result object, and the runner."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nilearn_vlm.analyses._figures import FigureSpec


def _jsonable(obj):
    """Best-effort conversion of parameters and statistics to JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 64 else f"<array {obj.shape}>"
    if isinstance(obj, pd.DataFrame):
        return f"<table {obj.shape}>"
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        return repr(obj)


@dataclass
class AnalysisResult:
    """What an analysis returns: data only (tables, numbers, text, figure specifications).

    Nothing here draws or formats: the report renders the result
    (:func:`nilearn_vlm.report.analysis_section`), and :meth:`plot` draws
    the figure specifications for interactive use.

    Parameters
    ----------
    name : str
        Name of the analysis that produced it.
    tables : dict of str to pandas.DataFrame
        Tidy (long) tables; the first one is the main table.
    stats : dict
        Key numbers (JSON-able), e.g. the analysis's headline statistic.
    params : dict
        Parameters the analysis ran with.
    text : str
        What was computed, in words (report text).
    notes : list of str
        Parts that were skipped and why, warnings.
    models : list of str
        ``model/subject`` of the results used.
    figures : list of FigureSpec
        The figures, as data (:class:`~nilearn_vlm.analyses.FigureSpec`:
        kind, tidy table, which columns go where, title, axis labels).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"x": [1, 2], "y": [0.5, 0.7]})
    >>> r = AnalysisResult("demo", tables={"main": table}, stats={"mean": 1.5},
    ...                    figures=[FigureSpec("line", table, x="x", y="y", title="y by x")])
    >>> r.to_frame().shape, r.summary()["stats"], r.summary()["figures"]
    ((2, 2), {'mean': 1.5}, ['y by x'])
    >>> [fig.get_label() for fig in r.plot()]
    ['y by x']
    """

    name: str
    tables: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    text: str = ""
    notes: list = field(default_factory=list)
    models: list = field(default_factory=list)
    figures: list = field(default_factory=list)

    def to_frame(self, table=None):
        """A tidy table.

        Parameters
        ----------
        table : str or None
            Name of the table (see ``tables``); None gives the main (first) one.

        Returns
        -------
        pandas.DataFrame
        """
        if not self.tables:
            return pd.DataFrame()
        if table is None:
            table = next(iter(self.tables))
        if table not in self.tables:
            raise KeyError(f"no table {table!r} in the {self.name} result; tables: {sorted(self.tables)}")
        return self.tables[table]

    def plot(self):
        """The figure specifications drawn with matplotlib (:meth:`FigureSpec.render`).

        Returns
        -------
        list of matplotlib.figure.Figure
        """
        return [spec.render() for spec in self.checked_figures()]

    def checked_figures(self):
        """``figures``, after checking that each is a :class:`~nilearn_vlm.analyses.FigureSpec`.

        Returns
        -------
        list of FigureSpec
        """
        for i, spec in enumerate(self.figures):
            if not isinstance(spec, FigureSpec):
                raise TypeError(
                    f"{self.name} result: figures[{i}] is a {type(spec).__name__}; analyses return "
                    "nilearn_vlm.analyses.FigureSpec objects (data), not drawn figures"
                )
        return list(self.figures)

    def summary(self):
        """JSON-able summary: name, models, parameters, statistics, tables' sizes, notes.

        Returns
        -------
        dict
        """
        return {
            "name": self.name,
            "models": list(self.models),
            "params": _jsonable(self.params),
            "stats": _jsonable(self.stats),
            "tables": {k: int(len(v)) for k, v in self.tables.items()},
            "figures": [spec.title for spec in self.checked_figures()],
            "notes": list(self.notes),
        }

    def save(self, folder):
        """Write ``summary.json``, one TSV per table and ``figures.json`` into ``folder``.

        ``figures.json`` holds the figure specifications
        (:meth:`FigureSpec.to_dict`), so a saved result keeps its figures as data.

        Returns
        -------
        pathlib.Path
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps(self.summary(), indent=1))
        for key, frame in self.tables.items():
            frame.to_csv(folder / f"{key}.tsv", sep="\t", index=False, na_rep="n/a")
        figures = [_jsonable(spec.to_dict()) for spec in self.checked_figures()]
        (folder / "figures.json").write_text(json.dumps(figures, indent=1))
        return folder


class BaseAnalysis:
    """Base class of analyses run on fitted results.

    Subclasses set the class attributes and implement :meth:`run`; the
    default :meth:`check` tests the number of results and the ``requires``
    fields.

    Attributes
    ----------
    name : str
        Name users look the analysis up by (:func:`nilearn_vlm.get_analysis`).
    description : str
        One line on what it computes.
    requires : tuple
        Fields of :class:`~nilearn_vlm.results.Results` that must be filled
        in every result. An item that is a tuple means "one of these".
    n_results : tuple of (int, int or None)
        Minimum and maximum number of results (models) it takes; None: no
        maximum. An analysis with a maximum of 1 is run on each result
        separately by :func:`run_analyses`.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> class Needs2(BaseAnalysis):
    ...     name = "needs-two"
    ...     requires = ("encoder_scores",)
    ...     n_results = (2, 2)
    >>> Needs2().check([Results("a", encoder_scores=np.zeros(3))])
    (False, 'needs at least 2 results (models), got 1')
    """

    name = ""
    description = ""
    requires = ()
    n_results = (1, 1)

    def check(self, results):
        """Whether the results allow this analysis.

        Parameters
        ----------
        results : Results or list of Results

        Returns
        -------
        ok : bool
        reason : str
            Why not (empty when ``ok``).
        """
        results = _as_list(results)
        lo, hi = self.n_results
        if len(results) < lo:
            return False, f"needs at least {lo} results (models), got {len(results)}"
        if hi is not None and len(results) > hi:
            return False, f"takes at most {hi} results (models), got {len(results)}"
        for res in results:
            for req in self.requires:
                alts = req if isinstance(req, tuple) else (req,)
                if not any(_filled(getattr(res, a, None)) for a in alts):
                    what = " or ".join(alts)
                    return False, f"results of model {res.model!r} lack {what}"
        return True, ""

    def run(self, results, **params):
        """Run the analysis; returns an :class:`AnalysisResult`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run(results, **params)")

    # helpers for subclasses
    def _one(self, results):
        results = _as_list(results)
        if len(results) != 1:
            raise ValueError(f"analysis {self.name!r} takes one result; got {len(results)}")
        ok, reason = self.check(results)
        if not ok:
            raise ValueError(f"analysis {self.name!r} cannot run: {reason}")
        return results[0]

    def _checked(self, results):
        results = _as_list(results)
        ok, reason = self.check(results)
        if not ok:
            raise ValueError(f"analysis {self.name!r} cannot run: {reason}")
        return results


def _filled(value):
    if value is None:
        return False
    if isinstance(value, (dict, list, tuple)):
        return len(value) > 0
    return True


def _as_list(results):
    if isinstance(results, (list, tuple)):
        return list(results)
    return [results]


def _label(res):
    return f"{res.model}/{res.subject}" if res.subject else str(res.model)


def _accepted(func, kwargs):
    sig = inspect.signature(func)
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in sig.parameters}


def run_analyses(results_list, names="all", params=None, raise_errors=False, **data):
    """Run every installed analysis the available results allow.

    Parameters
    ----------
    results_list : Results or list of Results
        Fitted results, one per model (and subject).
    names : "all" or list of str
        Analyses to run (names of :func:`nilearn_vlm.get_analysis`).
    params : dict of str to dict, optional
        Keyword parameters per analysis name, e.g.
        ``{"redundancy": {"n_permutations": 500}}``.
    raise_errors : bool, default=False
        Re-raise an analysis's exception instead of recording it as skipped.
    **data
        Shared inputs (e.g. ``bold=``, ``features=``, ``runs=``); each
        analysis gets those its ``run`` accepts.

    Returns
    -------
    done : dict of str to AnalysisResult
        Keyed by analysis name; an analysis taking one result that is run on
        several gets keys ``"name[model]"`` (``"name[model/subject]"`` when a
        model appears more than once).
    skipped : dict of str to str
        Why each analysis (or analysis and result) was not run.

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.results import Results
    >>> done, skipped = run_analyses([Results("toy", encoder_scores=np.zeros(4))], names=[])
    >>> done, skipped
    ({}, {})
    """
    from nilearn_vlm.plugins import UnknownPluginError, get_analysis, iter_plugins

    results_list = _as_list(results_list)
    params = dict(params or {})
    if names == "all":
        names = [e.name for e in iter_plugins("analysis")]
    elif isinstance(names, str):
        names = [names]
    unknown = set(params) - set(names)
    if unknown and names:
        raise ValueError(f"params given for analyses that are not run: {sorted(unknown)}; run: {names}")
    done, skipped = {}, {}
    for name in names:
        try:
            cls = get_analysis(name)
        except UnknownPluginError as exc:
            if raise_errors:
                raise
            skipped[name] = str(exc)
            continue
        analysis = cls() if isinstance(cls, type) else cls
        hi = analysis.n_results[1]
        if hi == 1 and len(results_list) > 1:
            labels = [r.model for r in results_list]
            if len(set(labels)) < len(labels):
                labels = [_label(r) for r in results_list]
            jobs = [(f"{name}[{lab}]", [r]) for lab, r in zip(labels, results_list)]
        else:
            jobs = [(name, results_list)]
        for key, res in jobs:
            ok, reason = analysis.check(res)
            if not ok:
                skipped[key] = reason
                continue
            kwargs = {**_accepted(analysis.run, data), **params.get(name, {})}
            try:
                done[key] = analysis.run(res if len(res) > 1 else res[0], **kwargs)
            except Exception as exc:  # noqa: BLE001 - one failing analysis must not stop the rest
                if raise_errors:
                    raise
                skipped[key] = f"failed: {type(exc).__name__}: {exc}"
    return done, skipped
