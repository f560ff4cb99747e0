"""Figures: content that makes each readable on its own, and atomic writing."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from test_ppc import synthetic_fit

from sdebayes.exceptions import OutputError
from sdebayes.plots import (
    FIGURES,
    plot_convergence_rates,
    plot_eigenvalues,
    plot_equilibria,
    plot_final_pit,
    plot_interference,
    plot_ppc_pvalues,
    plot_ppc_statistic,
    plot_trajectories,
    time_steps,
    write_figures,
)
from sdebayes.ppc import STATISTICS, posterior_predictive_check

matplotlib.use("Agg")


def PVALUES(tree, check):
    return plot_ppc_pvalues(check)


def INTERFERENCE(tree, check):
    return plot_interference(tree)


@pytest.fixture(scope="module")
def tree():
    return synthetic_fit(n_sessions=30, jitter=0.01)


@pytest.fixture(scope="module")
def check(tree):
    return posterior_predictive_check(tree, n_draws=60, random_seed=2)


def texts(figure: Figure) -> str:
    """Every piece of text on a figure: titles, labels, legends, annotations."""
    parts = [figure.get_suptitle()]
    for legend in figure.legends:
        parts += [text.get_text() for text in legend.get_texts()]
    for axis in figure.axes:
        parts += [axis.get_title(), axis.get_xlabel(), axis.get_ylabel()]
        parts += [text.get_text() for text in axis.texts]
        if axis.get_legend() is not None:
            parts += [text.get_text() for text in axis.get_legend().get_texts()]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("draw", "needles"),
    [
        (lambda t, c: plot_trajectories(c), ["S1: security", "observed mean", "89%", "step"]),
        (lambda t, c: plot_eigenvalues(t), ["Re λ = 0", "|1 + λ dt| < 1", "λ1 (slowest)"]),
        (INTERFERENCE, ["obs ", "89% interval", "trade-off"]),
        (lambda t, c: plot_convergence_rates(t), ["50% and 89% intervals", "per step"]),
        (lambda t, c: plot_equilibria(t), ["Pareto front", "P(Pareto-optimal)", "(score)"]),
        (PVALUES, ["p-values", "final_pit"]),
        (lambda t, c: plot_final_pit(c), ["PIT", "S2: functionality", "p = "]),
    ],
)
def test_each_figure_has_a_title_labels_and_a_legend(tree, check, draw, needles):
    figure = draw(tree, check)
    assert isinstance(figure, Figure)
    text = texts(figure)
    assert figure.get_suptitle() or figure.axes[0].get_title()
    for needle in needles:
        assert needle in text, (needle, text)
    if draw not in (PVALUES, INTERFERENCE):  # heatmaps label rows and columns with ticks
        assert any(axis.get_xlabel() for axis in figure.axes)
        assert any(axis.get_ylabel() for axis in figure.axes)


@pytest.mark.parametrize("statistic", [name for name in STATISTICS if name != "final_pit"])
def test_statistic_figures_show_each_p_value(check, statistic):
    figure = plot_ppc_statistic(check, statistic)
    rows = [row for row in check.rows() if row["name"] == statistic]
    shown = [text.get_text() for axis in figure.axes for text in axis.texts]
    assert sorted(shown) == sorted(f"p = {row['p_value']:.2f}" for row in rows)
    assert STATISTICS[statistic] in figure.get_suptitle()


def test_unknown_statistic_is_rejected(check):
    with pytest.raises(ValueError, match=r"statistic='median' is not one of change_mean"):
        plot_ppc_statistic(check, "median")


def test_the_stability_disc_follows_the_time_steps():
    # Versions at times 0, 1, 3: steps of 1 and 2, so two Euler discs |1 + λ dt| < 1 with
    # radii 1 and 1/2, centred at -1 and -1/2.
    tree = synthetic_fit(n_sessions=5, n_steps=2, times=[0.0, 1.0, 3.0])
    assert time_steps(tree).tolist() == [1.0, 2.0]
    figure = plot_eigenvalues(tree)
    circles = {
        (round(p.center[0], 6), round(p.radius, 6))
        for p in figure.axes[0].patches
        if isinstance(p, Circle)
    }
    assert circles == {(-1.0, 1.0), (-0.5, 0.5)}
    assert "per unit of time" in figure.axes[0].get_xlabel()


def test_the_pit_figure_leaves_no_pyplot_figure_open(check):
    before = plt.get_fignums()
    plot_final_pit(check)
    assert plt.get_fignums() == before


def test_write_figures_writes_every_figure_in_each_format(tree, check, tmp_path):
    paths = write_figures(tree, check, tmp_path / "figures", formats=("png", "svg"), dpi=40)
    assert [path.name for path in paths] == [
        f"{stem}.{suffix}" for stem in FIGURES for suffix in ("png", "svg")
    ]
    for path in paths:
        head = path.read_bytes()[:200]
        assert head.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in head
    assert not [p for p in (tmp_path / "figures").iterdir() if p.name.startswith(".")]


def test_write_figures_fails_before_drawing_when_the_parent_is_missing(tree, check, tmp_path):
    with pytest.raises(OutputError, match=r"--output-dir .*: its parent .* does not exist"):
        write_figures(tree, check, tmp_path / "no" / "such")


def test_write_figures_refuses_a_file_as_directory(tree, check, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(OutputError, match=r"is a file; pass a directory"):
        write_figures(tree, check, target)


@pytest.mark.parametrize("formats", [(), ("jpg",)])
def test_write_figures_rejects_other_formats(tree, check, tmp_path, formats):
    with pytest.raises(ValueError, match=r"must be a non-empty subset of png, svg"):
        write_figures(tree, check, tmp_path, formats=formats)


def test_equilibrium_axes_centre_on_the_medians(tree):
    figure = plot_equilibria(tree)
    medians = np.nanmedian(
        tree["posterior"]["equilibrium"].stack(sample=("chain", "draw")).values, axis=-1
    )
    low, high = figure.axes[0].get_xlim()
    assert low < medians[:, 0].min() and medians[:, 0].max() < high
