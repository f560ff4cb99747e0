"""Posterior summaries of a fit: the JSON document and the tables the command line prints.

Every quantity is summarised by its posterior mean, its median and an equal-tailed credible
interval (the central ``ci_prob`` share of the draws, ArviZ's default kind). The median is
given beside the mean because some quantities have heavy tails: when a drift matrix is close
to singular the equilibrium :math:`-A^{-1} b` of a few draws lies far away, and the mean can
fall outside the interval. The probability defaults
to ArviZ's ``stats.ci_prob`` setting (0.89 unless changed), so intervals match those of
``arviz.summary``.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from rich.table import Table

from sdebayes.diagnostics import DIAGNOSTIC_THRESHOLDS
from sdebayes.dynamics import MODES
from sdebayes.exceptions import DataError

__all__ = [
    "INTERVAL_QUANTITIES",
    "SCHEMA",
    "add_interval_rows",
    "check_strategies",
    "json_number",
    "resolve_ci_prob",
    "summarize",
    "summarize_draws",
    "summary_tables",
]

logger = logging.getLogger(__name__)

SCHEMA = "sdebayes.summary/1"
"""Identifier of the JSON layout written by :func:`summarize`."""

_SAMPLE_DIMS = ("chain", "draw")

_MATRICES = ("drift", "interference", "diffusion_correlation")
_VECTORS = ("intercept", "eigenvalues_real", "eigenvalues_imag", "equilibrium")
_SCALARS = ("convergence_rate", "discrete_stability", "r2")
INTERVAL_QUANTITIES = _MATRICES + _VECTORS + _SCALARS
"""Quantities summarised as ``{"mean", "median", "lower", "upper"}`` (nested like their dims)."""
_INTERVAL_KEYS = ("mean", "median", "lower", "upper")

_ORDER = (
    "drift",
    "intercept",
    "eigenvalues_real",
    "eigenvalues_imag",
    "convergence_rate",
    "discrete_stability",
    "mode_probabilities",
    "equilibrium",
    "interference",
    "diffusion_correlation",
    "r2",
    "pareto_probability",
)


def check_strategies(available: Sequence[str], requested: Sequence[str] | None) -> list[str]:
    """Return the strategies to report, checking that each requested one exists.

    Parameters
    ----------
    available : sequence of str
        Strategies in the data, in data order.
    requested : sequence of str, optional
        Strategies asked for; default all.

    Returns
    -------
    list of str

    Raises
    ------
    DataError
        If a requested strategy is not in the data; the message lists the available ones.
    """
    available = list(map(str, available))
    if not requested:
        return available
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise DataError(
            f"--strategy {', '.join(map(repr, unknown))}: not in the data; available "
            f"strategies: {', '.join(available)}"
        )
    return list(dict.fromkeys(requested))


def summarize(
    tree: xr.DataTree,
    strategies: Sequence[str] | None = None,
    ci_prob: float | None = None,
) -> dict[str, Any]:
    """Summarise a fit as a JSON-ready dictionary (schema ``sdebayes.summary/1``).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit returned by :func:`sdebayes.fit.fit` or read by
        :func:`sdebayes.io_netcdf.load_posterior`.
    strategies : sequence of str, optional
        Strategies to report. Default: all.
    ci_prob : float, optional
        Probability mass of the credible intervals. Default: ArviZ's ``stats.ci_prob``.

    Returns
    -------
    dict
        ``schema``, ``data``, ``model``, ``ci_prob``, ``diagnostics`` and ``strategies``:
        for each strategy the drift (rows of ``{"mean", "median", "lower", "upper"}``),
        intercept,
        eigenvalues (real and imaginary parts, slowest first), convergence rate, discrete
        stability, mode probabilities, equilibrium, interference, diffusion correlation,
        one-step :math:`R^2` and Pareto probability.

    Examples
    --------
    >>> summary = summarize(tree, strategies=["AI"])  # doctest: +SKIP
    >>> summary["strategies"]["AI"]["convergence_rate"]  # doctest: +SKIP
    {'mean': 0.149, 'median': 0.149, 'lower': 0.141, 'upper': 0.158}
    """
    ci_prob = resolve_ci_prob(ci_prob)
    posterior = tree["posterior"].to_dataset()
    available = list(map(str, posterior["strategy"].to_numpy()))
    strategies = check_strategies(available, strategies)

    return {
        "schema": SCHEMA,
        "data": _data_block(tree, available),
        "model": {
            "name": tree.attrs.get("model_name", ""),
            "discretization": tree.attrs.get("discretization", "euler"),
            "typical_dt": float(tree.attrs.get("typical_dt", 1.0)),
        },
        "ci_prob": ci_prob,
        "diagnostics": json.loads(tree.attrs.get("diagnostics", "{}")),
        "strategies": {
            name: summarize_draws(posterior.sel(strategy=name), ci_prob) for name in strategies
        },
    }


def resolve_ci_prob(ci_prob: float | None) -> float:
    """Return ``ci_prob``, or ArviZ's ``stats.ci_prob`` setting when it is ``None``."""
    if ci_prob is None:
        from arviz_base import rcParams

        ci_prob = float(rcParams["stats.ci_prob"])
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob={ci_prob!r} must lie strictly between 0 and 1, e.g. 0.89")
    return float(ci_prob)


def _data_block(tree: xr.DataTree, strategies: list[str]) -> dict[str, Any]:
    constant = tree["constant_data"].to_dataset()
    if "observed_data" in tree.children:
        scores = tree["observed_data"]["scores"]
        versions = xr.ufuncs.isfinite(scores.isel(objective=0)).sum("step").to_numpy()
        sessions, without = int(scores.sizes["session"]), int((versions < 2).sum())
    else:  # fitted from statistics computed elsewhere (sdebayes.fit.fit_statistics)
        sessions = int(tree.attrs["data_sessions"])
        without = int(tree.attrs["data_sessions_without_transitions"])
    return {
        "source": tree.attrs.get("data_source", ""),
        "sessions": sessions,
        "sessions_without_transitions": without,
        "transitions": int(constant["n_transitions"].sum()),
        "strategies": strategies,
        "objectives": list(map(str, constant["objective"].to_numpy())),
    }


def summarize_draws(posterior: xr.Dataset, ci_prob: float) -> dict[str, Any]:
    """Summarise one strategy's draws (dims ``chain``, ``draw``) as in :func:`summarize`.

    Parameters
    ----------
    posterior : xarray.Dataset
        Derived quantities of one strategy, as in a fit's posterior group.
    ci_prob : float
        Interval probability.

    Returns
    -------
    dict
        The entries of ``summarize(...)["strategies"][NAME]``.
    """
    block: dict[str, Any] = {}
    for name in INTERVAL_QUANTITIES:
        block[name] = _interval(posterior[name], ci_prob)

    modes = posterior["mode"].to_numpy().ravel()
    block["mode_probabilities"] = {
        mode: round(float(np.mean(modes == code)), 4) for code, mode in enumerate(MODES)
    }
    block["pareto_probability"] = round(float(posterior["pareto_optimal"].mean()), 4)

    return {key: block[key] for key in _ORDER}


def _interval(values: xr.DataArray, ci_prob: float) -> Any:
    """Mean and equal-tailed interval of ``values`` over the draws, nested like its dims."""
    tail = (1.0 - ci_prob) / 2.0
    draws = values.stack(sample=_SAMPLE_DIMS).transpose(..., "sample").to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: undefined quantities
        mean = np.nanmean(draws, axis=-1)
        lower, median, upper = np.nanquantile(draws, [tail, 0.5, 1.0 - tail], axis=-1)

    def entry(index: tuple[int, ...]) -> dict[str, float | None]:
        return {
            "mean": json_number(mean[index]),
            "median": json_number(median[index]),
            "lower": json_number(lower[index]),
            "upper": json_number(upper[index]),
        }

    def nest(prefix: tuple[int, ...], depth: int) -> Any:
        if depth == mean.ndim:
            return entry(prefix)
        return [nest((*prefix, i), depth + 1) for i in range(mean.shape[depth])]

    return nest((), 0)


def json_number(value: float) -> float | None:
    """Round for display; NaN (an undefined quantity) becomes ``None`` (JSON ``null``)."""
    return None if not np.isfinite(value) else round(float(value), 4)


def summary_tables(summary: dict[str, Any]) -> list[Table]:
    """Render a summary as one table per strategy, plus a diagnostics table.

    Parameters
    ----------
    summary : dict
        As returned by :func:`summarize`.

    Returns
    -------
    list of rich.table.Table
    """
    percent = f"{100 * summary['ci_prob']:g}%"
    objectives = summary["data"]["objectives"]
    tables = [
        _strategy_table(name, block, objectives, percent)
        for name, block in summary["strategies"].items()
    ]
    tables.append(_diagnostics_table(summary["diagnostics"], summary["model"]))
    return tables


def _strategy_table(name: str, block: dict[str, Any], objectives: list[str], percent: str) -> Table:
    table = Table(
        title=f"Strategy {name}: posterior mean and {percent} interval", title_justify="left"
    )
    table.add_column("quantity")
    for column in _INTERVAL_KEYS:
        table.add_column(column, justify="right")
    add_interval_rows(table, block, objectives, _INTERVAL_KEYS)

    table.add_section()
    for mode, probability in block["mode_probabilities"].items():
        table.add_row(f"P(mode = {mode})", f"{probability:.3f}", "", "", "")
    table.add_row("P(equilibrium Pareto-optimal)", f"{block['pareto_probability']:.3f}", "", "", "")
    return table


def add_interval_rows(
    table: Table,
    block: dict[str, Any],
    objectives: list[str],
    keys: Sequence[str],
    stability_label: str = "discrete stability (spectral radius)",
) -> None:
    """Add a row per interval quantity of one strategy, from its rates to its drift matrix.

    Parameters
    ----------
    table : rich.table.Table
        A table with a label column followed by one column per key.
    block : dict
        One strategy of a summary, ``summary["strategies"][name]``, as made by
        :func:`summarize` or :func:`sdebayes.baseline.summarize_baseline`.
    objectives : list of str
    keys : sequence of str
        Entries of each quantity to show, in column order, e.g. ``("mean", "lower", "upper")``.
    stability_label : str, optional
        Label of the ``discrete_stability`` row.
    """

    def cells(entry: dict[str, float | None]) -> tuple[str, ...]:
        return tuple("undefined" if entry[key] is None else f"{entry[key]:.3f}" for key in keys)

    table.add_row("convergence rate  -max Re(eig A)", *cells(block["convergence_rate"]))
    table.add_row(stability_label, *cells(block["discrete_stability"]))
    table.add_row("one-step R^2", *cells(block["r2"]))
    for i, (real, imag) in enumerate(
        zip(block["eigenvalues_real"], block["eigenvalues_imag"], strict=True)
    ):
        order = " (slowest)" if i == 0 else ""
        table.add_row(f"eigenvalue {i + 1}{order}, real part", *cells(real))
        table.add_row(f"eigenvalue {i + 1}{order}, imaginary part", *cells(imag))

    table.add_section()
    for objective, entry in zip(objectives, block["equilibrium"], strict=True):
        table.add_row(f"equilibrium {objective}", *cells(entry))
    table.add_section()
    for i, row in enumerate(block["interference"]):
        for j in range(i + 1, len(row)):
            table.add_row(f"interference {objectives[i]} ~ {objectives[j]}", *cells(row[j]))
    table.add_section()
    for i, row in enumerate(block["drift"]):
        for j, entry in enumerate(row):
            table.add_row(f"drift d{objectives[i]}/dt per {objectives[j]}", *cells(entry))


def _diagnostics_table(diagnostics: dict[str, Any], model: dict[str, Any]) -> Table:
    table = Table(title="Sampling diagnostics", title_justify="left")
    table.add_column("diagnostic")
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_row("model", str(model.get("name", "")), "")
    table.add_row(
        "transitions",
        f"{model.get('discretization', 'euler')} (typical dt {model.get('typical_dt', 1.0):g})",
        "",
    )
    table.add_row("sampler", str(diagnostics.get("sampler", "")), "")
    table.add_row("chains x draws", f"{diagnostics.get('chains')} x {diagnostics.get('draws')}", "")
    limits = DIAGNOSTIC_THRESHOLDS
    table.add_row("max R-hat", f"{diagnostics.get('max_rhat')}", f"<= {limits['max_rhat']}")
    table.add_row(
        "min bulk ESS", f"{diagnostics.get('min_ess_bulk')}", f">= {limits['min_ess_bulk']}"
    )
    table.add_row("divergences", f"{diagnostics.get('divergences')}", f"<= {limits['divergences']}")
    table.add_row("sampling seconds", f"{diagnostics.get('seconds')}", "")
    return table
