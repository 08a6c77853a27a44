"""Figures of the pipeline report (matplotlib and nilearn plotting)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def glass_brain(img, title, threshold=None, symmetric=True, vmax=None):
    """A nilearn glass-brain figure of a 3D map (returns the matplotlib figure)."""
    from nilearn import plotting

    plt = _plt()
    fig = plt.figure(figsize=(7.5, 2.8))
    plotting.plot_glass_brain(
        img, figure=fig, title=title, threshold=threshold, colorbar=True, plot_abs=not symmetric,
        cmap="RdBu_r" if symmetric else "hot", vmax=vmax, black_bg=False,
    )
    return fig


def network_bars(frame, value, title, ylabel, hue=None):
    """Bars of ``value`` per network (optionally grouped by ``hue``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    if hue is None:
        ax.bar(frame["network"], frame[value], color="#4c72b0")
    else:
        groups = list(pd.unique(frame[hue]))
        nets = list(pd.unique(frame["network"]))
        width = 0.8 / max(len(groups), 1)
        for k, g in enumerate(groups):
            sub = frame[frame[hue] == g].set_index("network").reindex(nets)
            ax.bar(np.arange(len(nets)) + k * width, sub[value], width=width, label=str(g))
        ax.set_xticks(np.arange(len(nets)) + width * (len(groups) - 1) / 2, nets)
        ax.legend(fontsize=8, frameon=False)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.axhline(0, color="k", lw=0.6)
    ax.tick_params(axis="x", labelsize=8, rotation=20)
    fig.tight_layout()
    return fig


def layer_curves(curves, title):
    """Per-layer curves with confidence bands.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``stream``, ``network``, ``layer``, ``estimate``, ``low``, ``high``.
    """
    plt = _plt()
    streams = list(pd.unique(curves["stream"]))
    fig, axes = plt.subplots(1, len(streams), figsize=(4.2 * len(streams), 3.0), squeeze=False)
    for ax, stream in zip(axes[0], streams):
        sub = curves[curves["stream"] == stream]
        for net, g in sub.groupby("network", sort=False):
            g = g.sort_values("layer")
            ax.plot(g["layer"], g["estimate"], marker="o", ms=3, label=net)
            ax.fill_between(g["layer"], g["low"], g["high"], alpha=0.2)
        ax.set_title(f"{stream} stream", fontsize=10)
        ax.set_xlabel("layer")
        ax.set_ylabel("mean out-of-fold r")
        ax.axhline(0, color="k", lw=0.6)
    axes[0][-1].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def recovery_bars(table):
    """Planted versus recovered: Dice with the planted network and sign accuracy per driver."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["dice"], width=0.4, label="Dice with planted network")
    ax.bar(x + 0.2, table["sign_accuracy"], width=0.4, label="sign accuracy")
    labels = [f"{r.site}\n-> {r.network} ({'+' if r.sign > 0 else '-'})" for r in table.itertuples()]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.3)
    ax.legend(fontsize=8, frameon=False, loc="upper center", ncol=2)
    ax.set_title("Recovery of the planted truth", fontsize=10)
    fig.tight_layout()
    return fig
