"""A self-contained HTML report of a fit: summaries, diagnostics, checks and figures.

The page is plain HTML built with the standard library: inline CSS, every figure embedded as a
base64 PNG, no JavaScript and no network resource, so it reads offline and can be mailed or
archived as one file. It holds the provenance of the fit, the sampling diagnostics, one table
per strategy (the numbers of ``sdebayes sample``), the convergence-rate contrasts between
every pair of strategies, the posterior predictive checks with their p-values, and every
figure of :mod:`sdebayes.plots`.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sdebayes import __version__
from sdebayes._io import atomic_path, check_output_path
from sdebayes.diagnostics import DIAGNOSTIC_THRESHOLDS
from sdebayes.dynamics import MODES
from sdebayes.plots import FIGURES, iter_figures
from sdebayes.ppc import (
    DEFAULT_DRAWS,
    STATISTICS,
    PosteriorPredictiveCheck,
    posterior_predictive_check,
)
from sdebayes.summary import summarize

__all__ = ["build_report", "write_report"]

logger = logging.getLogger(__name__)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
tr.section td { border-top: 2px solid #888; }
td.bad, span.bad { background: #fbd5d5; font-weight: 600; }
td.good { background: #e2f4e2; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
code { background: #f4f4f4; padding: 0 .2em; }
.note { color: #555; font-size: .9em; }
nav a { margin-right: 1em; }
"""


def build_report(
    tree: xr.DataTree,
    check: PosteriorPredictiveCheck | None = None,
    *,
    title: str | None = None,
    ci_prob: float | None = None,
    n_draws: int = DEFAULT_DRAWS,
    random_seed: int | None = 0,
    dpi: int = 100,
) -> str:
    """Build the HTML report of a fit as one string.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`sdebayes.fit.fit`) or a file read by
        :func:`sdebayes.io_netcdf.load_posterior` with all four groups.
    check : PosteriorPredictiveCheck, optional
        Posterior predictive check to report. Default: computed here on the data the
        posterior was fitted to, with ``n_draws`` and ``random_seed``.
    title : str, optional
        Page title. Default: names the data and the model.
    ci_prob : float, optional
        Probability of the credible intervals. Default: ArviZ's ``stats.ci_prob`` (0.89).
    n_draws : int, default=300
        Posterior draws replicated when ``check`` is not given.
    random_seed : int, optional, default=0
        Seed of the check when ``check`` is not given.
    dpi : int, default=100
        Resolution of the embedded figures.

    Returns
    -------
    str
        A complete HTML document.

    See Also
    --------
    write_report : write it to a file atomically.
    """
    summary = summarize(tree, ci_prob=ci_prob)
    ci_prob = summary["ci_prob"]
    if check is None:
        check = posterior_predictive_check(
            tree, n_draws=n_draws, random_seed=random_seed, ci_prob=ci_prob
        )
    source = summary["data"]["source"] or "the data"
    title = title or f"sdebayes report: {Path(source).name}, {summary['model']['name']} model"

    sections = [
        ("provenance", "Data and model", _provenance(tree, summary)),
        ("diagnostics", "Sampling diagnostics", _diagnostics(summary["diagnostics"])),
        ("strategies", "Posterior summaries per strategy", _strategies(summary)),
        ("contrasts", "Convergence-rate contrasts", _rate_contrasts(tree)),
        ("checks", "Posterior predictive checks", _checks(check)),
        ("figures", "Figures", _figures(tree, check, ci_prob, dpi)),
    ]
    navigation = " ".join(
        f'<a href="#{anchor}">{html.escape(heading)}</a>' for anchor, heading, _ in sections
    )
    body = "\n".join(
        f'<h2 id="{anchor}">{html.escape(heading)}</h2>\n{content}'
        for anchor, heading, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav>{navigation}</nav>\n{body}\n"
        f'<p class="note">Written by sdebayes {html.escape(__version__)}. Intervals are '
        f"equal-tailed {_percent(ci_prob)} credible intervals.</p>\n</body>\n</html>\n"
    )


def write_report(
    tree: xr.DataTree,
    path: str | Path,
    check: PosteriorPredictiveCheck | None = None,
    **options: Any,
) -> Path:
    """Build the report and write it to ``path`` atomically.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit.
    path : str or Path
        Destination HTML file; checked before any work starts.
    check : PosteriorPredictiveCheck, optional
        See :func:`build_report`.
    **options
        Passed to :func:`build_report` (``title``, ``ci_prob``, ``n_draws``,
        ``random_seed``, ``dpi``).

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        If ``path`` cannot be written.
    """
    path = check_output_path(path)
    document = build_report(tree, check, **options)
    with atomic_path(path) as temporary:
        temporary.write_text(document, encoding="utf-8")
    logger.info("wrote %s (%.1f MB)", path, len(document) / 1e6)
    return path


def _percent(ci_prob: float) -> str:
    return f"{100 * ci_prob:g}%"


def _table(header: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    lines = []
    for k, row in enumerate(rows):
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                text, style = cell
                cells.append(f'<td class="{style}">{html.escape(str(text))}</td>')
            else:
                cells.append(f"<td>{html.escape(str(cell))}</td>")
        style = f' class="{classes[k]}"' if classes and classes[k] else ""
        lines.append(f"<tr{style}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _format(value: float | None, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def _provenance(tree: xr.DataTree, summary: dict[str, Any]) -> str:
    data = summary["data"]
    attrs = tree.attrs
    rows = [
        ["data", data["source"] or "(not recorded)"],
        ["data SHA-256", attrs.get("data_sha256", "") or "(not recorded)"],
        ["sessions", data["sessions"]],
        ["sessions with a single version (no transition)", data["sessions_without_transitions"]],
        ["transitions", data["transitions"]],
        ["strategies", ", ".join(data["strategies"])],
        ["objectives", ", ".join(data["objectives"])],
        ["model", f"{summary['model']['name']} ({summary['model']['discretization']})"],
        ["sampler", attrs.get("sampler", "")],
        [
            "chains x draws (tuning)",
            f"{attrs.get('chains')} x {attrs.get('draws')} ({attrs.get('tune')})",
        ],
        ["random seed", attrs.get("random_seed", "")],
        [
            "versions",
            f"sdebayes {attrs.get('sdebayes_version', '')}, PyMC "
            f"{attrs.get('pymc_version', '')}, ArviZ {attrs.get('arviz_version', '')}",
        ],
    ]
    return _table(["item", "value"], rows)


def _diagnostics(diagnostics: dict[str, Any]) -> str:
    limits = DIAGNOSTIC_THRESHOLDS
    rhat, ess, divergences = (
        diagnostics.get("max_rhat"),
        diagnostics.get("min_ess_bulk"),
        diagnostics.get("divergences"),
    )

    def mark(ok: bool | None, text: Any) -> tuple[Any, str]:
        return (text, "" if ok is None else ("good" if ok else "bad"))

    rows: list[list[Any]] = [
        [
            "max R-hat",
            mark(None if rhat is None else rhat <= limits["max_rhat"], rhat),
            f"<= {limits['max_rhat']}",
        ],
        [
            "min bulk ESS",
            mark(None if ess is None else ess >= limits["min_ess_bulk"], ess),
            f">= {limits['min_ess_bulk']}",
        ],
        [
            "divergences",
            mark(
                None if divergences is None else divergences <= limits["divergences"], divergences
            ),
            f"<= {limits['divergences']}",
        ],
        ["sampling seconds", diagnostics.get("seconds"), ""],
    ]
    verdict = "all thresholds met" if diagnostics.get("passed") else "a threshold fails"
    return (
        _table(["diagnostic", "value", "threshold"], rows)
        + f'<p class="note">R-hat and bulk ESS over drift, intercept, diffusion covariance and '
        f"convergence rates: {html.escape(verdict)}.</p>"
    )


def _strategies(summary: dict[str, Any]) -> str:
    objectives = summary["data"]["objectives"]
    return "\n".join(
        _strategy_section(name, block, objectives) for name, block in summary["strategies"].items()
    )


def _strategy_section(name: str, block: dict[str, Any], objectives: list[str]) -> str:
    rows: list[list[Any]] = []
    sections: list[str] = []

    def add(label: str, entry: dict[str, Any], section: bool = False) -> None:
        rows.append([label, *(_format(entry[key]) for key in ("mean", "median", "lower", "upper"))])
        sections.append("section" if section else "")

    add("convergence rate -max Re(eig A)", block["convergence_rate"])
    add("discrete stability |eig(I + A dt)|", block["discrete_stability"])
    add("one-step R^2", block["r2"])
    for i, (real, imag) in enumerate(
        zip(block["eigenvalues_real"], block["eigenvalues_imag"], strict=True)
    ):
        add(f"eigenvalue {i + 1}, real part", real, section=i == 0)
        add(f"eigenvalue {i + 1}, imaginary part", imag)
    for i, objective in enumerate(objectives):
        add(f"equilibrium {objective}", block["equilibrium"][i], section=i == 0)
    first = True
    for i, row in enumerate(block["interference"]):
        for j in range(i + 1, len(row)):
            add(f"interference {objectives[i]} ~ {objectives[j]}", row[j], section=first)
            first = False
    modes = ", ".join(f"{mode} {block['mode_probabilities'][mode]:.2f}" for mode in MODES)
    return (
        f"<h3>{html.escape(name)}</h3>"
        + _table(["quantity", "mean", "median", "lower", "upper"], rows, sections)
        + f"<p>Mode probabilities: {html.escape(modes)}. P(equilibrium Pareto-optimal) = "
        f"{block['pareto_probability']:.2f}.</p>"
    )


def _rate_contrasts(tree: xr.DataTree) -> str:
    rates = tree["posterior"]["convergence_rate"]
    names = list(map(str, rates["strategy"].to_numpy()))
    values = rates.transpose("strategy", ...).to_numpy().reshape(len(names), -1)
    rows = []
    for i, name in enumerate(names):
        rows.append(
            [name]
            + [
                "" if i == j else f"{float(np.mean(values[i] > values[j])):.2f}"
                for j in range(len(names))
            ]
        )
    return (
        '<p class="note">Entry (row A, column B): posterior probability that A converges faster '
        "than B, P(rate_A &gt; rate_B), from the joint draws. <code>sdebayes contrast "
        "POSTERIOR A B</code> gives the full contrast (rates, equilibria, interference).</p>"
        + _table(["P(row > column)", *names], rows)
    )


def _checks(check: PosteriorPredictiveCheck) -> str:
    rows, classes = [], []
    extreme = {(r["strategy"], r["objective"], r["name"]) for r in check.extreme()}
    previous = None
    for row in check.rows():
        key = (row["strategy"], row["objective"], row["name"])
        p_text = _format(row["p_value"], 2)
        rows.append(
            [
                row["strategy"],
                row["name"],
                row["objective"],
                _format(row["observed"], 3),
                (p_text, "bad") if key in extreme else p_text,
            ]
        )
        classes.append("section" if previous not in (None, row["name"]) else "")
        previous = row["name"]
    explained = "".join(
        f"<li><code>{html.escape(name)}</code>: {html.escape(text)}</li>"
        for name, text in STATISTICS.items()
    )
    n_extreme = len(extreme)
    n_defined = sum(row["p_value"] is not None for row in check.rows())
    return (
        f"<p>{check.replicates.sizes['draw']} posterior draws; every session replicated from its "
        "observed first version over its observed times. p = P(T(replicated) &ge; "
        "T(observed)); values near 0 or 1 mean the model does not reproduce the statistic "
        "(highlighted: outside [0.025, 0.975], or below 0.05 for <code>final_pit</code>, a "
        f'one-sided uniformity test). <span class="bad">{n_extreme}</span> of {n_defined} '
        f"defined p-values are extreme; about {0.05 * n_defined:.0f} would be by chance.</p>"
        f"<ul>{explained}</ul>"
        + _table(["strategy", "statistic", "objective", "observed", "p-value"], rows, classes)
    )


def _figures(tree: xr.DataTree, check: PosteriorPredictiveCheck, ci_prob: float, dpi: int) -> str:
    parts = []
    for stem, figure in iter_figures(tree, check, ci_prob=ci_prob):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        figure.clear()
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        caption = html.escape(FIGURES.get(stem, stem))
        parts.append(
            f'<figure id="figure-{stem}"><img alt="{caption}" '
            f'src="data:image/png;base64,{encoded}"><figcaption>{caption}</figcaption></figure>'
        )
    return "\n".join(parts)
