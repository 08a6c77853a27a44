"""Figures of the pipeline report: thresholded brain maps (nilearn) and its own plots."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from nilearn_vlm.analyses import FigureSpec
from nilearn_vlm.report._quantities import QUANTITIES, label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _vmax(values, quantity):
    """The colour scale's maximum: the largest |value| shown, within the quantity's limits."""
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size else 1.0
    limits = QUANTITIES[quantity].limits
    if limits is not None:
        vmax = min(vmax, max(abs(limits[0]), abs(limits[1])))
    return vmax if vmax > 0 else 1.0


def glass_brain(img, title, threshold, quantity, vmax=None):
    """A nilearn glass brain of a thresholded, signed 3D map; the colour bar is the quantity's.

    Parameters
    ----------
    img : Niimg-like
        Values below ``threshold`` in absolute value are already zero.
    title : str
    threshold : float
        Smallest absolute value shown (drawn as the colour bar's cut).
    quantity : str
        Key of the quantity shown (:data:`~nilearn_vlm.report.QUANTITIES`);
        its label ends the title.
    vmax : float, optional
    """
    from nilearn import plotting

    plt = _pyplot()
    fig = plt.figure(figsize=(7.5, 2.8))
    data = np.asarray(img.dataobj)
    vmax = _vmax(data, quantity) if vmax is None else vmax
    plotting.plot_glass_brain(
        img, figure=fig, title=f"{title}: {label(quantity)}", threshold=threshold, colorbar=True,
        plot_abs=False, cmap="RdBu_r", vmin=-vmax, vmax=vmax, black_bg=False,
    )
    return fig


def surface_views(img, title, threshold, quantity, vmax=None):
    """A map projected on fsaverage5 (nilearn's ``vol_to_surf``), lateral and medial views.

    For MNI152 volumes only (the projection assumes that space). Give the
    unthresholded map: it is projected, then thresholded on the surface at
    ``threshold`` (projecting a thresholded map would average its zeros in).
    """
    from nilearn import plotting

    data = np.asarray(img.dataobj)
    vmax = _vmax(data, quantity) if vmax is None else vmax
    with warnings.catch_warnings():
        # vertices whose samples all fall outside a small field of view: NaN, not drawn
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        fig, _ = plotting.plot_img_on_surf(
            img, surf_mesh="fsaverage5", views=["lateral", "medial"], hemispheres=["left", "right"],
            threshold=threshold, vmin=-vmax, vmax=vmax, cmap="RdBu_r", colorbar=True, inflate=True,
            title=f"{title}: {label(quantity)}", cbar_tick_format="%.2g",
        )
    fig.set_size_inches(6.4, 4.6)
    return fig


def network_bars(frame, value, quantity, title):
    """Bars of ``frame[value]`` per network, labelled with the quantity (a :class:`~nilearn_vlm.analyses.FigureSpec`)."""
    return FigureSpec("bar", frame, x="network", y=value, title=title, ylabel=label(quantity), reference=0.0,
                      size=(6.0, 3.0))


def layer_curves(curves, title, planted=None):
    """Per-site encoding by fractional depth, one panel per stream, one line per network, with intervals.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``stream``, ``network``, ``depth``, ``estimate``, ``low``,
        ``high`` (:func:`~nilearn_vlm.report.layer_curve_table`).
    title : str
    planted : pandas.DataFrame, optional
        Columns ``stream``, ``depth``, ``network``, ``sign``: the planted
        layers, marked by a vertical line in their network's colour.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    streams = list(pd.unique(curves["stream"]))
    networks = list(pd.unique(curves["network"]))
    colors = dict(zip(networks, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(streams), figsize=(4.4 * len(streams), 3.2), squeeze=False, sharey=True)
    for ax, stream in zip(axes[0], streams):
        sub = curves[curves["stream"] == stream]
        for net in networks:
            line = sub[sub["network"] == net].sort_values("depth")
            if line.empty:
                continue
            ax.plot(line["depth"], line["estimate"], marker="o", ms=3, lw=1.2, color=colors[net], label=net)
            ax.fill_between(line["depth"], line["low"], line["high"], color=colors[net], alpha=0.18, lw=0)
        if planted is not None:
            for row in planted[planted["stream"] == stream].itertuples():
                ax.axvline(row.depth, color=colors.get(row.network, "k"), ls="--", lw=1)
                ax.text(row.depth, 0.98, f" planted: {row.network} ({'+' if row.sign > 0 else '-'})",
                        transform=ax.get_xaxis_transform(), rotation=90, va="top", fontsize=7,
                        color=colors.get(row.network, "k"))
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlim(0, 1.02)
        ax.set_title(stream, fontsize=9)
        ax.set_xlabel(label("depth"))
    axes[0][0].set_ylabel(label("layer_r", "mean"))
    axes[0][-1].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def recovery_bars(table):
    """Planted versus recovered per driver: Dice, sign accuracy, key-neuron precision and recall."""
    drivers = [f"{r.site}\n-> {r.network} ({'+' if r.sign > 0 else '-'})" for r in table.itertuples()]
    measures = [(q, table[q]) for q in ("dice", "sign_accuracy", "key_precision", "key_recall") if q in table]
    tidy = pd.concat([pd.DataFrame({"driver": drivers, "measure": QUANTITIES[q].name, "value": v.to_numpy()})
                      for q, v in measures], ignore_index=True)
    return FigureSpec("bar", tidy, x="driver", y="value", hue="measure", ylim=(0, 1.6),
                      title="Recovery of the planted truth", ylabel="fraction", size=(7.0, 3.2))
