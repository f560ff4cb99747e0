"""Figures of a fit and of its posterior predictive check.

Every function returns a :class:`matplotlib.figure.Figure` that reads on its own: a title
saying what is shown, axis labels with units, a legend, and the interval probability. Figures
are built on :class:`~matplotlib.figure.Figure` objects, never through ``pyplot``'s global
state (the PIT figure, drawn by arviz-plots, is detached from ``pyplot`` before it is
returned), so the library neither shows windows nor changes the user's backend; files are
rendered with Agg. :func:`write_figures` writes them all to a directory, each file
atomically.

Scores are in the objectives' own units (0-10 for the bundled data); rates and eigenvalues
are per unit of time, i.e. per refinement step when versions are one step apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch, Rectangle

from sdebayes._io import atomic_path, check_output_path, check_writable_directory
from sdebayes.dynamics import correlation, pareto_optimal
from sdebayes.exceptions import OutputError
from sdebayes.ppc import STATISTICS, PosteriorPredictiveCheck
from sdebayes.summary import resolve_ci_prob

__all__ = [
    "FIGURES",
    "iter_figures",
    "plot_convergence_rates",
    "plot_eigenvalues",
    "plot_equilibria",
    "plot_final_pit",
    "plot_interference",
    "plot_ppc_pvalues",
    "plot_ppc_statistic",
    "plot_trajectories",
    "prepare_directory",
    "time_steps",
    "write_figures",
]

logger = logging.getLogger(__name__)

FIGURES: dict[str, str] = {
    "trajectories": "replicated trajectories (fan chart) with observed sessions",
    "eigenvalues": "eigenvalue posterior in the complex plane with stability regions",
    "interference": "model-implied interference with intervals and observed values",
    "convergence_rates": "forest plot of the convergence rates",
    "equilibria": "equilibria in pairwise objective planes with the Pareto front",
    "ppc_pvalues": "posterior predictive p-values of every check",
    **{f"ppc_{name}": f"posterior predictive check: {text}" for name, text in STATISTICS.items()},
}
"""File stems written by :func:`write_figures`, with what each figure shows.

``ppc_final_pit`` is the PIT Δ-ECDF plot of the final scores, drawn by arviz-plots.
"""

Format = Literal["png", "svg"]

_DPI = 150
_SAMPLE = ("chain", "draw")


def time_steps(tree: xr.DataTree) -> np.ndarray:
    """Distinct time steps between consecutive versions of the observed sessions.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with an ``observed_data`` group.

    Returns
    -------
    numpy.ndarray
        Sorted distinct values of ``dt`` (``[1.0]`` for unit steps), rounded to 1e-9.
    """
    time = tree["observed_data"]["time"].to_numpy()
    values = np.concatenate([np.diff(row[np.isfinite(row)]) for row in time] + [[]])
    return np.unique(np.round(values, 9)) if values.size else np.array([1.0])


def _rate_unit(tree: xr.DataTree) -> str:
    return "per step" if np.allclose(time_steps(tree), 1.0) else "per unit of time"


def _strategies(tree: xr.DataTree, strategies: Sequence[str] | None) -> list[str]:
    from sdebayes.summary import check_strategies

    available = list(map(str, tree["posterior"]["strategy"].to_numpy()))
    return check_strategies(available, strategies)


def _colors(names: Sequence[str]) -> dict[str, str]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _flat(values: xr.DataArray) -> np.ndarray:
    """Stack chain and draw into one leading axis."""
    dims = [dim for dim in _SAMPLE if dim in values.dims]
    rest = [dim for dim in values.dims if dim not in dims]
    return values.transpose(*dims, *rest).to_numpy().reshape(-1, *values.shape[len(dims) :])


def _thin(n_total: int, n_points: int, seed: int = 0) -> np.ndarray:
    if n_total <= n_points:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n_points, replace=False))


def _grid(count: int) -> tuple[int, int]:
    """Rows and columns for ``count`` panels: 2 x 2 for four, otherwise up to three a row."""
    columns = 2 if count == 4 else min(count, 3)
    return int(np.ceil(count / columns)), columns


def _percent(ci_prob: float) -> str:
    return f"{100 * ci_prob:g}%"


def plot_trajectories(
    check: PosteriorPredictiveCheck,
    strategies: Sequence[str] | None = None,
    *,
    max_sessions: int = 25,
    ci_prob: float | None = None,
) -> Figure:
    """Fan chart of replicated scores per step, with observed sessions overlaid.

    One panel per strategy (rows) and objective (columns). Bands: central 50% and
    ``ci_prob`` intervals of the replicated scores at each step, over posterior draws and the
    strategy's sessions; lines: replicated and observed means per step; thin grey lines: a
    random subset of observed sessions (seed 0).

    Parameters
    ----------
    check : PosteriorPredictiveCheck
        From :func:`sdebayes.ppc.posterior_predictive_check`.
    strategies : sequence of str, optional
        Strategies to show. Default: all in the check.
    max_sessions : int, default=25
        Observed sessions drawn per panel.
    ci_prob : float, optional
        Outer band probability. Default: the check's ``ci_prob``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci_prob = check.ci_prob if ci_prob is None else resolve_ci_prob(ci_prob)
    observed, replicates = check.observed, check.replicates
    available = list(dict.fromkeys(map(str, observed["strategy"].to_numpy())))
    names = [name for name in (strategies or available) if name in available]
    objectives = list(map(str, observed["objective"].to_numpy()))
    colors = _colors(available)

    figure = Figure(figsize=(4.2 * len(objectives), 2.9 * len(names) + 0.9), layout="constrained")
    axes = figure.subplots(len(names), len(objectives), squeeze=False, sharex=True)
    strategy = observed["strategy"].to_numpy()
    step = observed["step"].to_numpy()
    session = observed["session"].to_numpy()
    scores = observed["scores"].to_numpy()
    simulated = replicates["scores"].to_numpy()
    tail = (1 - ci_prob) / 2
    low_score, high_score = scores.min(axis=0), scores.max(axis=0)

    for row, name in enumerate(names):
        mine = strategy == name
        steps = np.unique(step[mine])
        sessions = _sessions_to_draw(session[mine], step[mine], max_sessions)
        for col, objective in enumerate(objectives):
            axis = axes[row, col]
            bands = np.array(
                [
                    np.quantile(simulated[:, mine & (step == j), col], [tail, 0.25, 0.75, 1 - tail])
                    for j in steps
                ]
            )
            mean_rep = [simulated[:, mine & (step == j), col].mean() for j in steps]
            mean_obs = [scores[mine & (step == j), col].mean() for j in steps]
            color = colors[name]
            axis.fill_between(steps, bands[:, 0], bands[:, 3], color=color, alpha=0.15, lw=0)
            axis.fill_between(steps, bands[:, 1], bands[:, 2], color=color, alpha=0.3, lw=0)
            for label in sessions:
                these = mine & (session == label)
                axis.plot(step[these], scores[these, col], color="0.35", lw=0.6, alpha=0.45)
            axis.plot(steps, mean_rep, color=color, lw=2)
            axis.plot(steps, mean_obs, color="black", lw=1.4, ls="--", marker="o", ms=3)
            view = axis.get_ylim()  # the score range is drawn only where it falls in view
            for bound in (low_score[col], high_score[col]):
                axis.axhline(bound, color="0.3", lw=0.8, ls=":")
            axis.set_ylim(view)
            axis.set_title(f"{name}: {objective}", fontsize=10)
            if col == 0:
                axis.set_ylabel("score (objective's units)")
            if row == len(names) - 1:
                axis.set_xlabel("step (refinement round)")
            axis.grid(alpha=0.3)

    handles: list[Artist] = [
        Patch(color="0.4", alpha=0.3, label="replicated: central 50%"),
        Patch(color="0.4", alpha=0.15, label=f"replicated: central {_percent(ci_prob)}"),
        Line2D([], [], color="0.4", lw=2, label="replicated mean (strategy colour)"),
        Line2D([], [], color="black", lw=1.4, ls="--", marker="o", ms=3, label="observed mean"),
        Line2D([], [], color="0.35", lw=0.6, label=f"observed sessions (up to {max_sessions})"),
        Line2D([], [], color="0.3", lw=0.8, ls=":", label="observed score range"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    figure.suptitle(
        "Posterior predictive trajectories: sessions replicated from their observed first "
        f"version and length\n({replicates.sizes['draw']} posterior draws)",
        fontsize=11,
    )
    return figure


def _sessions_to_draw(session: np.ndarray, step: np.ndarray, limit: int) -> list[str]:
    labels, counts = np.unique(session, return_counts=True)
    longer = labels[counts > 1]
    chosen = _thin(len(longer), limit, seed=0)
    return list(longer[chosen])


def plot_eigenvalues(
    tree: xr.DataTree,
    strategies: Sequence[str] | None = None,
    *,
    n_points: int = 400,
) -> Figure:
    r"""Posterior of the drift eigenvalues in the complex plane, with stability regions.

    One panel per strategy, on common axes: every eigenvalue of ``n_points`` thinned draws,
    coloured by its rank (the slowest, largest real part, sets the convergence rate); the
    continuous-time stability boundary :math:`\operatorname{Re}\lambda = 0`; and, under the
    Euler discretisation, the disc :math:`|1 + \lambda\,\Delta t| < 1` in which the discrete
    iteration contracts, for each distinct time step of the data (at most three).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit.
    strategies : sequence of str, optional
        Default: all.
    n_points : int, default=400
        Draws shown per strategy.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = _strategies(tree, strategies)
    posterior = tree["posterior"].to_dataset()
    steps = time_steps(tree)[:3]
    unit = _rate_unit(tree)
    exact = tree.attrs.get("discretization", "euler") == "exact"
    real = {name: _flat(posterior["eigenvalues_real"].sel(strategy=name)) for name in names}
    imag = {name: _flat(posterior["eigenvalues_imag"].sel(strategy=name)) for name in names}

    radius = 1 / steps.min()
    lowest = min(float(np.quantile(values, 0.002)) for values in real.values())
    highest = max(float(np.quantile(values, 0.998)) for values in real.values())
    left = min(-2.1 * radius, 1.05 * lowest)
    right = max(0.3 * radius, highest + 0.1 * radius)
    extent = max(
        1.1 * radius, max(float(np.quantile(np.abs(v), 0.998)) for v in imag.values()) * 1.1
    )

    rows, columns = _grid(len(names))
    figure = Figure(figsize=(5.0 * columns, 4.1 * rows + 1.0), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    n_eigen = next(iter(real.values())).shape[-1]
    shades = ["#08306b", "#4292c6", "#9ecae1", "#c6dbef", "#deebf7"]
    # slowest eigenvalues crowded near 0 (rates below a quarter of 1/dt): magnify them
    slow_low = min(float(np.quantile(values[:, 0], 0.002)) for values in real.values())
    slow_high = max(float(np.quantile(values[:, 0], 0.998)) for values in real.values())
    span = max(max(slow_high, 0.0) - slow_low, 1e-3)
    zoom = -slow_low < 0.25 * radius
    zoom_x = (slow_low - 0.3 * span, max(slow_high, 0.0) + 0.3 * span)
    zoom_y = max(0.3 * span, max(float(np.quantile(np.abs(v[:, 0]), 0.998)) for v in imag.values()))
    for axis, name in zip(axes, names, strict=False):
        chosen = _thin(real[name].shape[0], n_points)
        panels = [axis]
        if zoom:
            inset = axis.inset_axes((0.05, 0.56, 0.44, 0.36))
            inset.set_xlim(*zoom_x)
            inset.set_ylim(-1.2 * zoom_y, 1.2 * zoom_y)
            inset.yaxis.tick_right()
            inset.tick_params(labelsize=6)
            inset.set_title("slowest eigenvalues, magnified", fontsize=7)
            axis.indicate_inset_zoom(inset, edgecolor="0.3")
            panels.append(inset)
        for panel in panels:
            _draw_plane(panel, real[name][chosen], imag[name][chosen], shades, steps, exact)
        rate = -real[name][:, 0]
        unstable = float(np.mean(rate < 0))
        axis.set_title(
            f"{name}: median rate {np.median(rate):.3f}, P(rate < 0) = {unstable:.2f}",
            fontsize=10,
        )
        axis.set_xlim(left, right)
        axis.set_ylim(-extent, extent)
        axis.set_aspect("equal", adjustable="box")
    for axis in axes[len(names) :]:
        axis.set_visible(False)
    for index, axis in enumerate(axes[: len(names)]):
        if index + columns >= len(names):
            axis.set_xlabel(f"Re λ ({unit})")
            axis.xaxis.set_tick_params(labelbottom=True)
        if index % columns == 0:
            axis.set_ylabel(f"Im λ ({unit})")

    labels = ["λ1 (slowest)", *(f"λ{k + 1}" for k in range(1, n_eigen))]
    handles: list[Artist] = [
        Line2D([], [], marker="o", ls="", color=shades[min(k, 4)], label=label)
        for k, label in enumerate(labels)
    ]
    handles.append(Line2D([], [], color="black", lw=1.2, label="Re λ = 0: continuous-time limit"))
    if not exact:
        dts = ", ".join(f"{dt:g}" for dt in steps)
        label = f"|1 + λ dt| < 1: Euler iteration contracts (dt = {dts})"
        handles.append(Patch(fc="tab:green", alpha=0.3, ec="tab:green", ls="--", label=label))
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    figure.suptitle(
        f"Eigenvalues λ of the drift matrices A ({min(n_points, real[names[0]].shape[0])} "
        "posterior draws per strategy)\nstable where Re λ < 0; convergence rate "
        "= -max Re λ",
        fontsize=11,
    )
    return figure


def _draw_plane(
    axis: Axes,
    real: np.ndarray,
    imag: np.ndarray,
    shades: list[str],
    steps: np.ndarray,
    exact: bool,
) -> None:
    """Eigenvalue draws (slowest on top), Euler discs and the line Re = 0 on one axis."""
    for k in range(real.shape[-1] - 1, -1, -1):
        color = shades[min(k, len(shades) - 1)]
        axis.scatter(real[:, k], imag[:, k], s=6, lw=0, c=color, alpha=0.5)
    if not exact:
        for dt in steps:
            axis.add_patch(Circle((-1 / dt, 0), 1 / dt, facecolor="tab:green", alpha=0.08))
            axis.add_patch(
                Circle((-1 / dt, 0), 1 / dt, fill=False, color="tab:green", lw=1.2, ls="--")
            )
    axis.axvline(0, color="black", lw=1.2)
    axis.axhline(0, color="0.6", lw=0.6)
    axis.grid(alpha=0.3)


def plot_interference(
    tree: xr.DataTree,
    strategies: Sequence[str] | None = None,
    *,
    ci_prob: float | None = None,
) -> Figure:
    """Heatmaps of the model-implied interference with intervals and observed values.

    Each cell is the correlation of two objectives' one-step changes implied by the model at
    the observed states (posterior mean, coloured), its equal-tailed ``ci_prob`` interval,
    and the correlation observed in the data.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit.
    strategies : sequence of str, optional
        Default: all.
    ci_prob : float, optional
        Default: ArviZ's ``stats.ci_prob`` (0.89).

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci_prob = resolve_ci_prob(ci_prob)
    names = _strategies(tree, strategies)
    posterior = tree["posterior"].to_dataset()
    objectives = list(map(str, posterior["objective"].to_numpy()))
    n = len(objectives)
    tail = (1 - ci_prob) / 2

    observed = None
    if "constant_data" in tree.children and "change_cov" in tree["constant_data"]:
        change_cov = tree["constant_data"]["change_cov"]
        observed = {
            name: correlation(change_cov.sel(strategy=name).to_numpy(), zero_diagonal=True)
            for name in names
        }

    rows, columns = _grid(len(names))
    figure = Figure(figsize=(4.3 * columns + 1.2, 4.0 * rows + 0.9), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes[len(names) :]:
        axis.set_visible(False)
    axes = axes[: len(names)]
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-1.0, vmax=1.0)
    image = None
    for axis, name in zip(axes, names, strict=True):
        draws = _flat(posterior["interference"].sel(strategy=name))
        mean = draws.mean(axis=0)
        lower, upper = np.quantile(draws, [tail, 1 - tail], axis=0)
        shown = np.where(np.eye(n, dtype=bool), np.nan, mean)
        image = axis.imshow(shown, cmap="RdBu_r", norm=norm)
        for i in range(n):
            for j in range(n):
                if i == j:
                    axis.text(j, i, "—", ha="center", va="center", color="0.5")
                    continue
                text = f"{mean[i, j]:+.2f}\n[{lower[i, j]:+.2f}, {upper[i, j]:+.2f}]"
                if observed is not None:
                    text += f"\nobs {observed[name][i, j]:+.2f}"
                dark = abs(mean[i, j]) > 0.6
                axis.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color="white" if dark else "black",
                )
        axis.set_xticks(range(n), objectives, rotation=20)
        axis.set_yticks(range(n), objectives)
        axis.set_title(name)
    if image is not None:
        figure.colorbar(
            image, ax=list(axes), shrink=0.85, label="correlation of one-step changes (mean)"
        )
    figure.suptitle(
        "Interference between objectives: model-implied correlation of one-step changes\n"
        f"posterior mean, [{_percent(ci_prob)} interval], obs = observed in the data; "
        "negative = trade-off",
        fontsize=11,
    )
    return figure


def plot_convergence_rates(
    tree: xr.DataTree,
    strategies: Sequence[str] | None = None,
    *,
    ci_prob: float | None = None,
) -> Figure:
    """Forest plot of the convergence rate of each strategy.

    Points are posterior medians, thick bars central 50% intervals, thin bars equal-tailed
    ``ci_prob`` intervals; the numbers on the right repeat the median and interval. A rate
    at or below 0 means the slowest mode does not decay.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit.
    strategies : sequence of str, optional
        Default: all.
    ci_prob : float, optional
        Default: ArviZ's ``stats.ci_prob`` (0.89).

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci_prob = resolve_ci_prob(ci_prob)
    names = _strategies(tree, strategies)
    colors = _colors(list(map(str, tree["posterior"]["strategy"].to_numpy())))
    tail = (1 - ci_prob) / 2
    unit = _rate_unit(tree)

    figure = Figure(figsize=(8.5, 1.0 + 0.65 * len(names)), layout="constrained")
    axis = figure.subplots()
    highest = 0.0
    for row, name in enumerate(names):
        draws = _flat(tree["posterior"].to_dataset()["convergence_rate"].sel(strategy=name))
        low, quarter, median, three, high = np.quantile(draws, [tail, 0.25, 0.5, 0.75, 1 - tail])
        y = len(names) - 1 - row
        axis.plot([low, high], [y, y], color=colors[name], lw=1.5)
        axis.plot([quarter, three], [y, y], color=colors[name], lw=5, solid_capstyle="butt")
        axis.plot(median, y, "o", color="white", mec=colors[name], ms=7, mew=2)
        axis.annotate(
            f"{median:.3f} [{low:.3f}, {high:.3f}]",
            (1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=9,
        )
        highest = max(highest, high)
    axis.axvline(0, color="black", lw=1, ls=":")
    axis.set_yticks(range(len(names)), names[::-1])
    axis.set_ylabel("strategy")
    axis.set_ylim(-0.7, len(names) - 0.3)
    axis.set_xlabel(
        r"convergence rate $\rho = -\max\ \mathrm{Re}\,\lambda$" + f" ({unit}); ≤ 0: no decay"
    )
    axis.grid(axis="x", alpha=0.3)
    axis.set_title(
        f"Convergence rate per strategy: median, 50% and {_percent(ci_prob)} intervals",
        fontsize=11,
    )
    return figure


def plot_equilibria(
    tree: xr.DataTree,
    strategies: Sequence[str] | None = None,
    *,
    n_points: int = 400,
    ci_prob: float | None = None,
) -> Figure:
    """Equilibria in every pairwise objective plane, with the Pareto front.

    Small points: thinned posterior draws of each strategy's equilibrium
    :math:`x^* = -A^{-1} b`; large points with bars: posterior medians and equal-tailed
    ``ci_prob`` intervals per objective. The step line is the Pareto front of the medians in
    that plane (higher scores are better); the legend gives the posterior probability that
    each strategy's equilibrium is Pareto-optimal over all objectives, and the share of its
    draws outside the axes, which are set around the medians so that precise and imprecise
    equilibria can be read together. The dashed rectangle is the observed score range.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit.
    strategies : sequence of str, optional
        Default: all.
    n_points : int, default=400
        Draws shown per strategy.
    ci_prob : float, optional
        Default: ArviZ's ``stats.ci_prob`` (0.89).

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci_prob = resolve_ci_prob(ci_prob)
    tail = (1 - ci_prob) / 2
    names = _strategies(tree, strategies)
    posterior = tree["posterior"].to_dataset()
    colors = _colors(list(map(str, posterior["strategy"].to_numpy())))
    objectives = list(map(str, posterior["objective"].to_numpy()))
    pairs = [(i, j) for i in range(len(objectives)) for j in range(i + 1, len(objectives))]

    draws = {name: _flat(posterior["equilibrium"].sel(strategy=name)) for name in names}
    medians = np.array([np.nanmedian(draws[name], axis=0) for name in names])
    lows = np.array([np.nanquantile(draws[name], tail, axis=0) for name in names])
    highs = np.array([np.nanquantile(draws[name], 1 - tail, axis=0) for name in names])
    limits = _equilibrium_limits(medians, (highs - lows) / 2)
    pareto = posterior["pareto_optimal"].mean(_SAMPLE)
    scores = tree["observed_data"]["scores"]
    lower = scores.min(("session", "step")).to_numpy()
    upper = scores.max(("session", "step")).to_numpy()

    columns = min(len(pairs), 3)
    rows = int(np.ceil(len(pairs) / columns))
    figure = Figure(figsize=(4.7 * columns, 4.4 * rows + 1.1), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (i, j) in zip(axes, pairs, strict=False):
        for k, name in enumerate(names):
            values = draws[name][_thin(draws[name].shape[0], n_points)]
            axis.scatter(values[:, i], values[:, j], s=4, alpha=0.25, color=colors[name], lw=0)
            bars = np.abs(np.array([lows[k], highs[k]]) - medians[k])[:, [i, j], None]
            style = {"color": colors[name], "lw": 1.2, "capsize": 3, "zorder": 5}
            axis.errorbar(*medians[k, [i, j]], xerr=bars[:, 0], yerr=bars[:, 1], **style)
            axis.scatter(*medians[k, [i, j]], s=60, color=colors[name], edgecolor="black", zorder=6)
        corner, size = (lower[i], lower[j]), (upper[i] - lower[i], upper[j] - lower[j])
        axis.add_patch(Rectangle(corner, *size, fill=False, ls="--", color="0.4"))
        _draw_front(axis, medians[:, [i, j]])
        axis.set_xlim(*limits[i])
        axis.set_ylim(*limits[j])
        axis.set_xlabel(f"equilibrium {objectives[i]} (score)")
        axis.set_ylabel(f"equilibrium {objectives[j]} (score)")
        axis.grid(alpha=0.3)
    for axis in axes[len(pairs) :]:
        axis.set_visible(False)

    handles: list[Artist] = []
    for name in names:
        values = draws[name]
        inside = np.all(
            (values >= limits[:, 0]) & (values <= limits[:, 1]) & np.isfinite(values), axis=1
        )
        label = (
            f"{name}: P(Pareto-optimal) = {float(pareto.sel(strategy=name)):.2f}; "
            f"{np.mean(~inside):.0%} of draws off the axes"
        )
        handles.append(Line2D([], [], marker="o", color=colors[name], mec="black", label=label))
    handles += [
        Line2D([], [], color="black", lw=1.5, label="Pareto front of the medians in this plane"),
        Patch(fill=False, ls="--", edgecolor="0.4", label="observed score range"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9)
    figure.suptitle(
        "Equilibria x* = -A^-1 b: posterior draws (small), medians with "
        f"{_percent(ci_prob)} intervals (large, bars); higher scores are better",
        fontsize=11,
    )
    return figure


def _equilibrium_limits(medians: np.ndarray, half_widths: np.ndarray) -> np.ndarray:
    """Axis limits per objective: the medians' span, padded by a typical interval width."""
    finite = np.where(np.isfinite(medians), medians, np.nan)
    low, high = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
    typical = np.nanmedian(np.where(np.isfinite(half_widths), half_widths, np.nan), axis=0)
    span = high - low
    pad = np.maximum.reduce([0.3 * span, 2.0 * typical, 0.05 * np.maximum(np.abs(high), 1.0)])
    return np.column_stack([low - pad, high + pad])


def _draw_front(axis: Axes, points: np.ndarray) -> None:
    finite = np.all(np.isfinite(points), axis=1)
    optimal = pareto_optimal(np.where(finite[:, None], points, np.nan))
    front = points[optimal]
    front = front[np.argsort(front[:, 0])]
    if len(front):
        axis.step(front[:, 0], front[:, 1], where="pre", color="black", lw=1.5, zorder=4)


def plot_ppc_pvalues(check: PosteriorPredictiveCheck) -> Figure:
    """Heatmap of every posterior predictive p-value, strategies in columns.

    p-values near 0 or 1 (dark) mean the model does not reproduce a statistic; for
    ``final_pit`` (a one-sided uniformity test) only small values do.

    Parameters
    ----------
    check : PosteriorPredictiveCheck

    Returns
    -------
    matplotlib.figure.Figure
    """
    stats = check.statistics
    strategies = list(dict.fromkeys(map(str, stats["strategy"].to_numpy())))
    names = stats["statistic"].to_numpy()
    keys = [
        f"{name}: {entry}" for name, entry in zip(names, stats["objective"].values, strict=True)
    ]
    labels = list(dict.fromkeys(keys))
    grid = np.full((len(labels), len(strategies)), np.nan)
    for k, key in enumerate(keys):
        column = strategies.index(str(stats["strategy"].values[k]))
        grid[labels.index(key), column] = stats["p_value"].values[k]

    figure = Figure(figsize=(2.0 + 1.3 * len(strategies) + 3, 0.9 + 0.3 * len(labels)))
    figure.set_layout_engine("constrained")
    axis = figure.subplots()
    one_sided = np.array([label.startswith("final_pit") for label in labels])[:, None]
    severity = np.where(one_sided, 1 - grid, np.abs(grid - 0.5) * 2)
    image = axis.imshow(
        severity, cmap="Reds", norm=PowerNorm(3, 0, 1), aspect="auto", interpolation="none"
    )
    groups = [label.split(":")[0] for label in labels]
    for row in range(1, len(labels)):
        if groups[row] != groups[row - 1]:
            axis.axhline(row - 0.5, color="black", lw=1)
    for i in range(len(labels)):
        for j in range(len(strategies)):
            value = grid[i, j]
            text = "n/a" if not np.isfinite(value) else f"{value:.2f}"
            dark = np.isfinite(severity[i, j]) and severity[i, j] > 0.8
            axis.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    axis.set_xticks(range(len(strategies)), strategies)
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    axis.xaxis.tick_top()
    figure.colorbar(
        image,
        ax=axis,
        label="1 - two-sided p, i.e. 2 |p - 0.5|\n(final_pit: 1 - p); 1 = extreme",
        shrink=0.6,
    )
    axis.set_title(
        "Posterior predictive p-values P(T(replicated) ≥ T(observed))\n"
        f"{check.replicates.sizes['draw']} draws; final_pit: pot_c uniformity test p-value",
        fontsize=10,
    )
    return figure


def plot_ppc_statistic(check: PosteriorPredictiveCheck, statistic: str) -> Figure:
    """Replicated distribution of one test statistic against its observed value.

    One panel per strategy (rows) and objective or pair (columns): the histogram of the
    statistic over replicated data sets, the observed value as a vertical line (or, for the
    parameter-dependent residual autocorrelation, the histogram of its realised values) and
    the p-value.

    Parameters
    ----------
    check : PosteriorPredictiveCheck
    statistic : str
        A key of :data:`sdebayes.ppc.STATISTICS` other than ``"final_pit"`` (see
        :func:`plot_final_pit`).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``statistic`` is unknown.
    """
    allowed = [name for name in STATISTICS if name != "final_pit"]
    if statistic not in allowed:
        raise ValueError(f"statistic={statistic!r} is not one of {', '.join(allowed)}")
    stats = check.statistics.isel(check=check.statistics["statistic"].to_numpy() == statistic)
    strategies = list(dict.fromkeys(map(str, stats["strategy"].to_numpy())))
    labels = list(dict.fromkeys(map(str, stats["objective"].to_numpy())))
    realised = statistic == "residual_autocorrelation"

    figure = Figure(figsize=(3.6 * len(labels), 2.3 * len(strategies) + 1.1), layout="constrained")
    axes = figure.subplots(len(strategies), len(labels), squeeze=False)
    for k in range(stats.sizes["check"]):
        row = strategies.index(str(stats["strategy"].values[k]))
        col = labels.index(str(stats["objective"].values[k]))
        axis = axes[row, col]
        replicated = stats["replicated"].values[k]
        observed = stats["observed"].values[k]
        p_value = stats["p_value"].values[k]
        axis.set_title(f"{strategies[row]}: {labels[col]}", fontsize=9)
        if not np.isfinite(replicated).any():
            axis.text(
                0.5,
                0.5,
                "undefined\n(too few transitions)",
                ha="center",
                va="center",
                transform=axis.transAxes,
                color="0.4",
            )
            axis.set_yticks([])
            continue
        values = np.concatenate([replicated, observed])
        values = values[np.isfinite(values)]
        bins = np.histogram_bin_edges(values, bins=30)
        if np.ptp(values) == 0:
            bins = np.linspace(values[0] - 0.5, values[0] + 0.5, 11)
        axis.hist(replicated, bins=bins, color="tab:blue", alpha=0.6, label="replicated")
        if realised:
            axis.hist(
                observed,
                bins=bins,
                histtype="step",
                color="black",
                lw=1.5,
                label="observed (per draw)",
            )
        else:
            axis.axvline(observed[0], color="black", lw=2, label="observed")
        axis.margins(x=0.08, y=0.18)
        left = np.nanmean(observed) > np.nanmedian(replicated)
        axis.text(
            0.03 if left else 0.97,
            0.95,
            f"p = {p_value:.2f}",
            transform=axis.transAxes,
            va="top",
            ha="left" if left else "right",
            fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )
        axis.set_yticks([])
        axis.set_xlabel(_statistic_unit(statistic), fontsize=8)
    handles: list[Artist] = [Patch(color="tab:blue", alpha=0.6, label="replicated data sets")]
    if realised:
        handles.append(Line2D([], [], color="black", lw=1.5, label="observed data, per draw"))
    else:
        handles.append(Line2D([], [], color="black", lw=2, label="observed data"))
    figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9)
    figure.suptitle(
        f"Posterior predictive check: {STATISTICS[statistic]}\n"
        f"{check.replicates.sizes['draw']} replicated data sets; p = P(T(replicated) ≥ "
        "T(observed))",
        fontsize=11,
    )
    return figure


def _statistic_unit(statistic: str) -> str:
    return {
        "change_mean": "score change per step",
        "change_sd": "score change per step",
        "interference": "correlation",
        "residual_autocorrelation": "correlation",
        "final_sd": "final score",
        "final_q10": "final score",
        "final_q90": "final score",
    }[statistic]


def plot_final_pit(check: PosteriorPredictiveCheck) -> Figure:
    """PIT Δ-ECDF of the sessions' final scores, one panel per strategy and objective.

    Drawn by :func:`arviz_plots.plot_ecdf_pit` with the ``pot_c`` test: under a calibrated
    model the curve stays near 0; highlighted points contribute most to a departure, and the
    panel's p-value is that of the uniformity test.

    Parameters
    ----------
    check : PosteriorPredictiveCheck

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from arviz_plots import plot_ecdf_pit

    pit = check.pit
    strategy = pit["strategy"].to_numpy()
    names = [name for name in dict.fromkeys(map(str, strategy)) if (strategy == name).sum() > 1]
    data = {
        name: xr.DataArray(
            pit["final_pit"].to_numpy()[strategy == name],
            dims=(f"final_{name}", "objective"),
            coords={"objective": pit["objective"].to_numpy()},
        )
        for name in names
    }
    dims = [f"final_{name}" for name in names]
    n_objectives = pit.sizes["objective"]
    collection = plot_ecdf_pit(
        xr.DataTree.from_dict({"pit": xr.Dataset(data)}),
        group="pit",
        sample_dims=dims,
        backend="matplotlib",
        col_wrap=n_objectives,
        figure_kwargs={
            "figsize": (3.8 * n_objectives, 2.4 * len(names) + 1.0),
            "layout": "constrained",
        },
        visuals={
            "xlabel": {"text": "PIT of the final score"},
            "ylabel": {"text": "Δ ECDF"},
            "p_value_text": False,
        },
    )
    figure = collection.get_viz("figure")
    plt.close(figure)

    rows = {(row["strategy"], row["objective"]): row for row in check.rows()}
    limit = 1.15 * max(_largest_delta(values) for values in data.values())
    for axis in figure.axes:
        name, _, objective = axis.get_title().partition("\n")
        axis.set_title(f"{name}: {objective}", fontsize=9)
        axis.set_ylim(-max(limit, 0.1), max(limit, 0.1))
        row = rows.get((name, objective))
        if row is not None and row["name"] == "final_pit":
            axis.text(
                0.02,
                0.96,
                f"p = {row['p_value']:.2f}; {row['observed']:.0%} outside the "
                f"{_percent(check.ci_prob)} interval",
                transform=axis.transAxes,
                va="top",
                fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
            )
    figure.suptitle(
        "Calibration of the final scores: PIT Δ-ECDF per strategy and objective "
        "(arviz-plots, pot_c test)\nnear 0 = calibrated; above 0 at low PIT = observed below "
        "predictions; highlighted: points driving a departure",
        fontsize=10,
    )
    return figure


def _largest_delta(values: xr.DataArray) -> float:
    """Largest distance between the ECDF of PIT values (per column) and the uniform CDF."""
    ordered = np.sort(values.to_numpy(), axis=0)
    n = ordered.shape[0]
    steps = np.arange(1, n + 1)[:, None] / n
    return float(max(np.max(np.abs(steps - ordered)), np.max(np.abs(steps - 1 / n - ordered))))


def write_figures(
    tree: xr.DataTree,
    check: PosteriorPredictiveCheck,
    directory: str | Path,
    *,
    formats: Sequence[Format] = ("png",),
    ci_prob: float | None = None,
    dpi: int = _DPI,
) -> list[Path]:
    """Draw every figure of :data:`FIGURES` and write each to ``directory`` atomically.

    Parameters
    ----------
    tree : xarray.DataTree
        The fit.
    check : PosteriorPredictiveCheck
        Its posterior predictive check.
    directory : str or Path
        Existing or creatable directory (its parent must exist).
    formats : sequence of {"png", "svg"}, default=("png",)
        File formats; each figure is written once per format.
    ci_prob : float, optional
        Interval probability. Default: ArviZ's ``stats.ci_prob``.
    dpi : int, default=150
        Resolution of PNG files.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`FIGURES`.

    Raises
    ------
    OutputError
        If the directory cannot be created or written.
    """
    directory = prepare_directory(directory)
    unknown = [name for name in formats if name not in ("png", "svg")]
    if unknown or not formats:
        raise ValueError(f"formats={list(formats)!r} must be a non-empty subset of png, svg")
    for stem in FIGURES:
        for suffix in formats:
            check_output_path(directory / f"{stem}.{suffix}", option="--output-dir")

    written = []
    for stem, figure in iter_figures(tree, check, ci_prob=ci_prob):
        for suffix in formats:
            path = directory / f"{stem}.{suffix}"
            with atomic_path(path) as temporary:
                figure.savefig(temporary, format=suffix, dpi=dpi)
            written.append(path)
        figure.clear()
    logger.info("wrote %d figures to %s", len(written), directory)
    return written


def iter_figures(
    tree: xr.DataTree, check: PosteriorPredictiveCheck, *, ci_prob: float | None = None
) -> Iterator[tuple[str, Figure]]:
    """Yield ``(stem, figure)`` for every figure of :data:`FIGURES`, one at a time.

    Parameters
    ----------
    tree : xarray.DataTree
    check : PosteriorPredictiveCheck
    ci_prob : float, optional

    Yields
    ------
    tuple of (str, matplotlib.figure.Figure)
    """
    strategies = list(dict.fromkeys(map(str, check.observed["strategy"].to_numpy())))
    yield "trajectories", plot_trajectories(check, ci_prob=ci_prob)
    yield "eigenvalues", plot_eigenvalues(tree, strategies)
    yield "interference", plot_interference(tree, strategies, ci_prob=ci_prob)
    yield "convergence_rates", plot_convergence_rates(tree, strategies, ci_prob=ci_prob)
    yield "equilibria", plot_equilibria(tree, strategies, ci_prob=ci_prob)
    yield "ppc_pvalues", plot_ppc_pvalues(check)
    for name in STATISTICS:
        figure = plot_final_pit(check) if name == "final_pit" else plot_ppc_statistic(check, name)
        yield f"ppc_{name}", figure


def prepare_directory(directory: str | Path) -> Path:
    """Create ``directory`` if needed (its parent must exist); return it once writable.

    Raises
    ------
    OutputError
        If it is a file, its parent does not exist, or it is not writable.
    """
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"--output-dir {directory}: is a file; pass a directory")
    if not directory.exists():
        if not directory.parent.is_dir():
            raise OutputError(
                f"--output-dir {directory}: its parent {directory.parent} does not exist; "
                "create it first"
            )
        try:
            directory.mkdir()
        except OSError as err:
            raise OutputError(
                f"--output-dir {directory}: cannot be created ({err.strerror or err}); choose "
                "another directory"
            ) from err
    check_writable_directory(directory, f"--output-dir {directory}")
    return directory
