"""Figures of the pipeline report: brain maps (nilearn) and figure specifications of its tables."""

from __future__ import annotations

import pandas as pd

from nilearn_vlm.analyses import FigureSpec


def glass_brain(img, title, threshold=None, symmetric=True, vmax=None):
    """A nilearn glass-brain figure of a 3D map (returns the matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from nilearn import plotting

    fig = plt.figure(figsize=(7.5, 2.8))
    plotting.plot_glass_brain(
        img, figure=fig, title=title, threshold=threshold, colorbar=True, plot_abs=not symmetric,
        cmap="RdBu_r" if symmetric else "hot", vmax=vmax, black_bg=False,
    )
    return fig


def network_bars(frame, value, title, ylabel):
    """Bars of ``value`` per network (a :class:`~nilearn_vlm.analyses.FigureSpec`)."""
    return FigureSpec("bar", frame, x="network", y=value, title=title, ylabel=ylabel, reference=0.0,
                      size=(6.0, 3.0))


def layer_curves(curves, title):
    """Per-layer curves per network with confidence bands, one panel per stream.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``stream``, ``network``, ``layer``, ``estimate``, ``low``, ``high``.
    """
    return FigureSpec("line", curves, x="layer", y="estimate", hue="network", low="low", high="high",
                      facet="stream", title=title, xlabel="layer", ylabel="mean out-of-fold r",
                      reference=0.0, size=(4.2, 3.0))


def recovery_bars(table):
    """Planted versus recovered: Dice with the planted network and sign accuracy per driver."""
    drivers = [f"{r.site}\n-> {r.network} ({'+' if r.sign > 0 else '-'})" for r in table.itertuples()]
    tidy = pd.concat([
        pd.DataFrame({"driver": drivers, "measure": "Dice with planted network", "value": table["dice"]}),
        pd.DataFrame({"driver": drivers, "measure": "sign accuracy", "value": table["sign_accuracy"]}),
    ], ignore_index=True)
    return FigureSpec("bar", tidy, x="driver", y="value", hue="measure", ylim=(0, 1.3),
                      title="Recovery of the planted truth", ylabel="fraction", size=(6.5, 3.0))
