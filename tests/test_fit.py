"""Fitting the default model to the bundled paper data: diagnostics, recovery, files."""

import json
import re

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_array_equal

from sdebayes.data import read_trajectories
from sdebayes.datasets import paper_sessions_path, paper_truth
from sdebayes.diagnostics import DIAGNOSTIC_THRESHOLDS, diagnose
from sdebayes.exceptions import ConvergenceWarning, PosteriorFileError
from sdebayes.fit import fit
from sdebayes.io_netcdf import load_posterior, save_posterior

pytestmark = pytest.mark.slow

CI_PROB = 0.89  # ArviZ's default interval probability


def interval(draws: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - CI_PROB) / 2
    lower = draws.quantile(tail, dim=("chain", "draw")).to_numpy()
    upper = draws.quantile(1 - tail, dim=("chain", "draw")).to_numpy()
    return lower, upper


def test_tree_has_the_documented_groups(paper_fit):
    assert set(paper_fit.children) == {
        "posterior",
        "sample_stats",
        "observed_data",
        "constant_data",
    }
    posterior = paper_fit["posterior"]
    for name in (
        "drift",
        "intercept",
        "eigenvalues_real",
        "eigenvalues_imag",
        "convergence_rate",
        "discrete_stability",
        "mode",
        "equilibrium",
        "interference",
        "diffusion_correlation",
        "r2",
        "pareto_optimal",
        "loglik",
    ):
        assert name in posterior, name
    assert posterior["drift"].dims == ("chain", "draw", "strategy", "objective", "source")
    assert paper_fit.attrs["model_name"] == "hierarchical"
    assert "[priors.drift]" in paper_fit.attrs["model_spec"]


def test_default_fit_meets_the_diagnostic_thresholds(paper_fit):
    diagnostics = json.loads(paper_fit.attrs["diagnostics"])
    assert diagnostics["max_rhat"] <= DIAGNOSTIC_THRESHOLDS["max_rhat"], diagnostics
    assert diagnostics["min_ess_bulk"] >= DIAGNOSTIC_THRESHOLDS["min_ess_bulk"], diagnostics
    assert diagnostics["divergences"] == 0, diagnostics


def test_convergence_rate_intervals_cover_the_truth(paper_fit):
    truth = paper_truth()["strategies"]
    lower, upper = interval(paper_fit["posterior"]["convergence_rate"])
    for i, name in enumerate(paper_fit["posterior"]["strategy"].to_numpy()):
        rate = truth[str(name)]["convergence_rate"]
        assert lower[i] <= rate <= upper[i], (name, lower[i], rate, upper[i])


def test_drift_intervals_cover_most_true_entries(paper_fit):
    """89% intervals of 36 drift entries: about 32 should cover; fewer than 27 would be
    a clear sign of miscalibration (binomial(36, 0.89) puts P(X < 27) below 0.2%)."""
    truth = paper_truth()["strategies"]
    strategies = paper_fit["posterior"]["strategy"].to_numpy()
    true_drift = np.array([truth[str(name)]["drift"] for name in strategies])
    lower, upper = interval(paper_fit["posterior"]["drift"])
    covered = (lower <= true_drift) & (true_drift <= upper)
    assert covered.sum() >= 27, covered


def test_modes_match_the_scenario(paper_fit):
    truth = paper_truth()
    modes = paper_fit["posterior"]["mode"]
    for name in ("EF", "SF", "AI"):
        expected = truth["modes"].index(truth["strategies"][name]["mode"])
        assert float((modes.sel(strategy=name) == expected).mean()) > 0.95, name


def test_same_seed_same_posterior(paper_fit):
    again = fit(read_trajectories(paper_sessions_path()), random_seed=11, progressbar=False)
    assert_array_equal(again["posterior"]["drift"], paper_fit["posterior"]["drift"])


def test_netcdf_round_trip(paper_fit, tmp_path):
    path = save_posterior(paper_fit, tmp_path / "fit.nc")
    loaded = load_posterior(path, groups=("posterior", "constant_data"))
    assert_array_equal(loaded["posterior"]["drift"], paper_fit["posterior"]["drift"])
    assert loaded.attrs["model_spec"] == paper_fit.attrs["model_spec"]
    assert not list(tmp_path.glob(".fit.nc.*")), "temporary file left behind"


def test_load_rejects_other_files(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("not netcdf")
    with pytest.raises(PosteriorFileError, match="not a NetCDF posterior"):
        load_posterior(text)
    with pytest.raises(PosteriorFileError, match="no such file"):
        load_posterior(tmp_path / "absent.nc")


def test_load_names_missing_groups(paper_fit, tmp_path):
    path = tmp_path / "partial.nc"
    xr.DataTree.from_dict({"posterior": paper_fit["posterior"].to_dataset()}).to_netcdf(
        path, engine="h5netcdf"
    )
    with pytest.raises(PosteriorFileError, match=r"lacks group.*constant_data"):
        load_posterior(path, groups=("posterior", "constant_data"))


def test_short_run_warns_with_figures(paper_fit):
    short = paper_fit.copy()
    short["posterior"] = paper_fit["posterior"].isel(draw=slice(0, 30))
    with pytest.warns(ConvergenceWarning) as record:
        result = diagnose(short)
    messages = [str(item.message) for item in record]
    assert any(re.match(r"min bulk ESS is \d+ < 400", message) for message in messages), messages
    assert result["passed"] is False


@pytest.mark.parametrize("bad", [{"draws": 0}, {"chains": -1}, {"tune": 1.5}])
def test_non_positive_settings_are_rejected(bad):
    with pytest.raises(ValueError, match="must be a positive integer"):
        fit(read_trajectories(paper_sessions_path()), **bad)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "cuda"}, "backend='cuda' is not one of numba, jax"),
        ({"sampler": "stan"}, "sampler='stan' is not one of"),
    ],
)
def test_unknown_sampler_or_backend_is_rejected(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(read_trajectories(paper_sessions_path()), **settings)


def test_jax_backend_agrees_with_numba(paper_fit):
    """Both backends sample the same posterior: rate means agree within Monte Carlo error.

    The draws differ (another compiler, other rounding), so the bound is five standard errors
    of the difference of two means, each sd / sqrt(bulk ESS): a false alarm has odds below
    1e-5 per rate, while a backend that dropped a likelihood term shifts the rates by many
    standard errors.
    """
    jax_fit = fit(
        read_trajectories(paper_sessions_path()),
        random_seed=11,
        backend="jax",
        progressbar=False,
    )

    assert jax_fit.attrs["backend"] == "jax"
    rates = [tree["posterior"]["convergence_rate"] for tree in (paper_fit, jax_fit)]
    difference = (rates[0].mean(("chain", "draw")) - rates[1].mean(("chain", "draw"))).to_numpy()
    standard_error = np.hypot(*(azs.mcse(rate).to_numpy() for rate in rates))
    assert np.all(np.abs(difference) < 5 * standard_error), (difference, standard_error)
