r"""Contrasts between two strategies: posterior differences and the probability of an ordering.

All strategies are fitted jointly, so every posterior draw holds a value for each strategy and
the difference :math:`\theta_A^{(d)} - \theta_B^{(d)}` draw by draw is a draw from the
posterior of the difference. It keeps the correlation between strategies that partial
pooling induces, which comparing two marginal intervals would ignore. For each quantity the
contrast reports the mean, median and equal-tailed ``ci_prob`` interval of the difference and
:math:`\Pr(\theta_A > \theta_B \mid y)`, the share of draws in which A's value is larger.

Quantities: the convergence rate, every objective's equilibrium and every pair's
interference (the model-implied correlation of one-step changes). Undefined equilibria
(numerically singular drift) are left out draw by draw; ``draws`` counts the draws used.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import xarray as xr
from rich.table import Table

from sdebayes.exceptions import DataError
from sdebayes.summary import json_number, resolve_ci_prob

__all__ = ["CONTRASTED", "SCHEMA", "contrast", "contrast_table", "strategy_differences"]

logger = logging.getLogger(__name__)

SCHEMA = "sdebayes.contrast/1"
"""Identifier of the JSON layout returned by :func:`contrast`."""

CONTRASTED = ("convergence_rate", "equilibrium", "interference")
"""Posterior quantities compared by :func:`contrast`."""

_SAMPLE = ("chain", "draw")


def _check_pair(tree: xr.DataTree, first: str, second: str) -> None:
    available = list(map(str, tree["posterior"]["strategy"].to_numpy()))
    unknown = [name for name in (first, second) if name not in available]
    if unknown:
        raise DataError(
            f"strategy {', '.join(map(repr, unknown))} is not in the posterior; available "
            f"strategies: {', '.join(available)}"
        )
    if first == second:
        raise DataError(
            f"both strategies are {first!r}; pass two different ones, e.g. "
            f"{available[0]} {available[-1]}"
        )


def strategy_differences(tree: xr.DataTree, first: str, second: str) -> xr.Dataset:
    """Posterior draws of the differences ``first - second`` of every contrasted quantity.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`sdebayes.fit.fit`).
    first, second : str
        Strategy names.

    Returns
    -------
    xarray.Dataset
        ``convergence_rate`` (chain, draw), ``equilibrium`` (chain, draw, objective) and
        ``interference`` (chain, draw, objective, other), each ``first - second``.

    Raises
    ------
    DataError
        If a strategy is not in the posterior or both are the same.
    """
    _check_pair(tree, first, second)
    posterior = tree["posterior"].to_dataset()[list(CONTRASTED)]
    difference = posterior.sel(strategy=first) - posterior.sel(strategy=second)
    difference.attrs = {"first": first, "second": second}
    return difference.drop_vars("strategy", errors="ignore")


def contrast(
    tree: xr.DataTree,
    first: str,
    second: str,
    *,
    ci_prob: float | None = None,
) -> dict[str, Any]:
    """Summarise the posterior of ``first - second`` for rates, equilibria and interference.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`sdebayes.fit.fit`) or a file read by
        :func:`sdebayes.io_netcdf.load_posterior`.
    first, second : str
        Strategy names, "A" and "B".
    ci_prob : float, optional
        Probability of the equal-tailed intervals. Default: ArviZ's ``stats.ci_prob`` (0.89).

    Returns
    -------
    dict
        ``{"schema", "first", "second", "ci_prob", "contrasts": [...]}``; each contrast is
        ``{"quantity", "entry", "first", "second", "difference", "p_greater", "draws"}``:
        ``entry`` is ``None`` for the rate, the objective for an equilibrium and ``"a~b"``
        for an interference pair; ``first`` and ``second`` are the two posterior means,
        ``difference`` holds ``mean``, ``median``, ``lower`` and ``upper`` of A - B, and
        ``p_greater`` is P(A > B). Undefined numbers are ``None``.

    Raises
    ------
    DataError
        If a strategy is not in the posterior or both are the same.

    Examples
    --------
    >>> result = contrast(tree, "AI", "EF")  # doctest: +SKIP
    >>> result["contrasts"][0]["p_greater"]  # P(rate_AI > rate_EF)  # doctest: +SKIP
    0.0
    """
    ci_prob = resolve_ci_prob(ci_prob)
    differences = strategy_differences(tree, first, second)
    posterior = tree["posterior"].to_dataset()
    objectives = list(map(str, posterior["objective"].to_numpy()))

    rows = [
        _row(posterior, differences, "convergence_rate", None, {}, first, second, ci_prob),
    ]
    for objective in objectives:
        index = {"objective": objective}
        rows.append(
            _row(posterior, differences, "equilibrium", objective, index, first, second, ci_prob)
        )
    for i, a in enumerate(objectives):
        for b in objectives[i + 1 :]:
            index = {"objective": a, "other": b}
            rows.append(
                _row(
                    posterior,
                    differences,
                    "interference",
                    f"{a}~{b}",
                    index,
                    first,
                    second,
                    ci_prob,
                )
            )
    return {
        "schema": SCHEMA,
        "first": first,
        "second": second,
        "ci_prob": ci_prob,
        "contrasts": rows,
    }


def _row(
    posterior: xr.Dataset,
    differences: xr.Dataset,
    quantity: str,
    entry: str | None,
    index: dict[str, str],
    first: str,
    second: str,
    ci_prob: float,
) -> dict[str, Any]:
    values = differences[quantity].sel(index).to_numpy().ravel()
    a = posterior[quantity].sel({"strategy": first, **index}).to_numpy().ravel()
    b = posterior[quantity].sel({"strategy": second, **index}).to_numpy().ravel()
    valid = np.isfinite(values)
    tail = (1.0 - ci_prob) / 2.0
    if valid.any():
        used = values[valid]
        lower, median, upper = np.quantile(used, [tail, 0.5, 1.0 - tail])
        summary = {
            "mean": json_number(used.mean()),
            "median": json_number(median),
            "lower": json_number(lower),
            "upper": json_number(upper),
        }
        p_greater = json_number(float(np.mean(a[valid] > b[valid])))
    else:
        summary = dict.fromkeys(("mean", "median", "lower", "upper"))
        p_greater = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: undefined equilibrium
        means = float(np.nanmean(a)), float(np.nanmean(b))
    return {
        "quantity": quantity,
        "entry": entry,
        "first": json_number(means[0]),
        "second": json_number(means[1]),
        "difference": summary,
        "p_greater": p_greater,
        "draws": int(valid.sum()),
    }


def contrast_table(result: dict[str, Any]) -> Table:
    """Render a contrast as a table: both means, the difference with its interval, P(A > B).

    Parameters
    ----------
    result : dict
        As returned by :func:`contrast`.

    Returns
    -------
    rich.table.Table
    """
    first, second = result["first"], result["second"]
    percent = f"{100 * result['ci_prob']:g}%"
    table = Table(
        title=f"Contrast {first} - {second}: posterior of the difference, {percent} interval",
        title_justify="left",
    )
    table.add_column("quantity")
    for column in (first, second, f"mean {first} - {second}", "median", "lower", "upper"):
        table.add_column(column, justify="right")
    table.add_column(f"P({first} > {second})", justify="right")

    def cell(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.3f}"

    previous = None
    for row in result["contrasts"]:
        if previous is not None and row["quantity"] != previous:
            table.add_section()
        previous = row["quantity"]
        label = row["quantity"].replace("_", " ")
        if row["entry"] is not None:
            label = f"{label} {row['entry'].replace('~', ' ~ ')}"
        difference = row["difference"]
        table.add_row(
            label,
            cell(row["first"]),
            cell(row["second"]),
            cell(difference["mean"]),
            cell(difference["median"]),
            cell(difference["lower"]),
            cell(difference["upper"]),
            cell(row["p_greater"]),
        )
    return table
