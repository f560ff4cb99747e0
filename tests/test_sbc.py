"""Simulation-based calibration: prior draws, simulation, ranks, uniformity, resume, command."""

import json
import logging

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal
from typer.testing import CliRunner

from sdebayes import sbc
from sdebayes.cli import app
from sdebayes.data import trajectories_from_frame
from sdebayes.exceptions import SdebayesError
from sdebayes.sbc import (
    SBCSettings,
    prior_parameters,
    quantity_table,
    sbc_uniformity,
    simulate_prior_dataset,
    true_values,
)
from sdebayes.specs import load_spec

runner = CliRunner()


@pytest.fixture(scope="module")
def settings() -> SBCSettings:
    return SBCSettings(load_spec("hierarchical"), simulations=4, sessions_per_strategy=3, steps=4)


def test_prior_draws_are_reproducible_and_differ_between_simulations(settings):
    first = prior_parameters(settings, 0)
    again = prior_parameters(settings, 0)
    other = prior_parameters(settings, 51)  # another block of prior draws
    assert_array_equal(first["drift_standardised"], again["drift_standardised"])
    assert not np.allclose(first["drift_standardised"], other["drift_standardised"])
    assert list(first["strategy"].to_numpy()) == ["EF", "SF", "FF", "AI"]
    assert {"drift_population", "drift_spread", "diffusion_sd", "centre_drift"} <= set(first)


def test_prior_draws_keep_pymc_sampling_notes_out_of_the_output(caplog):
    """PyMC logs "Sampling: [...]" at INFO for each prior draw block; the SBC output is
    one line per simulation. A seed no other test uses makes sure PyMC really samples."""
    settings = SBCSettings(
        load_spec("hierarchical"), simulations=2, sessions_per_strategy=3, steps=4, seed=90817
    )
    level = logging.getLogger("pymc").level
    with caplog.at_level(logging.INFO):
        prior_parameters(settings, 0)

    assert not [record for record in caplog.records if record.name.startswith("pymc")]
    assert logging.getLogger("pymc").level == level, "the logger's own level is restored"


def test_prior_draws_follow_the_model_file():
    """Moments over 100 prior draws match the TOML priors."""
    spec = load_spec("unpooled")
    settings = SBCSettings(spec, simulations=100, sessions_per_strategy=1, steps=1)
    draws = xr.concat([prior_parameters(settings, i) for i in range(100)], dim="draw")
    diagonal = np.diagonal(draws["drift_standardised"].to_numpy(), axis1=-2, axis2=-1)
    # 100 draws x 4 strategies x 3 entries with sd 0.35: standard error of the mean 0.01, of
    # the sd about 2%; the tolerances are four standard errors.
    assert_allclose(diagonal.mean(), spec.drift.diagonal_mu, atol=0.04)
    assert_allclose(diagonal.std(), spec.drift.diagonal_sigma, rtol=0.1)
    assert_allclose(draws["centre_drift"].std(), spec.centre_drift.sigma, rtol=0.1)


def test_simulation_follows_the_euler_recursion(settings):
    parameters = prior_parameters(settings, 3).copy()
    parameters["diffusion_chol"] = parameters["diffusion_chol"] * 0.0  # no noise
    frame = simulate_prior_dataset(parameters, 2, 3, random_seed=1)
    assert list(frame.columns) == ["session", "strategy", "step", *sbc.DEFAULT_OBJECTIVES]
    assert len(frame) == 4 * 2 * 4
    rows = frame[frame["session"] == "SF-0001"][list(sbc.DEFAULT_OBJECTIVES)].to_numpy()
    drift = parameters["drift_standardised"].sel(strategy="SF").to_numpy()
    intercept = parameters["centre_drift"].sel(strategy="SF").to_numpy()
    for step in range(3):
        assert_allclose(rows[step + 1], rows[step] + drift @ rows[step] + intercept, rtol=1e-12)


def test_starting_states_are_standard_normal(settings):
    frame = simulate_prior_dataset(prior_parameters(settings, 0), 500, 1, random_seed=2)
    start = frame[frame["step"] == 0][list(sbc.DEFAULT_OBJECTIVES)].to_numpy()
    # 2,000 starting states per objective: standard error of the mean 0.022
    assert_allclose(start.mean(axis=0), 0.0, atol=0.1)
    assert_allclose(start.std(axis=0), 1.0, atol=0.1)


def test_quantity_names(settings):
    parameters = prior_parameters(settings, 1)
    frame = simulate_prior_dataset(parameters, 3, 4, random_seed=3)
    truth = true_values(parameters, trajectories_from_frame(frame), settings.spec)
    names, values = quantity_table(truth)
    assert len(names) == len(values) == len(set(names))
    for name in (
        "drift[AI,0,1]",
        "intercept[EF,2]",
        "diffusion_sd[FF,1]",
        "diffusion_correlation[SF,0,2]",
        "drift_population[2,1]",
        "drift_spread[off_diagonal]",
        "eigenvalues_real[EF,0]",
        "convergence_rate[EF]",
        "discrete_stability[AI]",
        "equilibrium[SF,2]",
        "loglik[FF]",
    ):
        assert name in names, name
    assert "diffusion_correlation[SF,2,0]" not in names  # only above the diagonal
    assert "diffusion_correlation[SF,1,1]" not in names
    drift = parameters["drift_standardised"].sel(strategy="AI").to_numpy()[0, 1]
    assert_allclose(values[names.index("drift[AI,0,1]")], drift, rtol=1e-12)
    rate = -np.linalg.eigvals(parameters["drift_standardised"].sel(strategy="EF")).real.max()
    assert_allclose(values[names.index("convergence_rate[EF]")], rate, rtol=1e-10)


def test_ranks_break_ties_at_random_and_skip_missing_values():
    rng = np.random.default_rng(0)
    draws = np.array([[0.0, 1.0, np.nan], [2.0, 1.0, np.nan], [3.0, 1.0, np.nan]])
    truth = np.array([2.5, 1.0, 0.0])
    rank, used, pit = sbc._ranks(truth, draws, rng)
    assert rank[0] == 2 and used[0] == 3
    assert 0 <= rank[1] <= 3  # three ties: any rank 0..3
    assert np.isnan(rank[2]) and used[2] == 0 and np.isnan(pit[2])
    assert 2 / 4 <= pit[0] <= 3 / 4


def test_uniformity_accepts_uniform_ranks_and_flags_skewed_ones(rng):
    n = 300
    pit = np.column_stack([rng.uniform(size=n), rng.beta(2.0, 1.0, size=n)])
    result = xr.Dataset(
        {"pit": (("simulation", "quantity"), pit)},
        coords={"quantity": ["drift[AI,0,0]", "drift[AI,0,1]"]},
    )
    document = sbc_uniformity(result)
    good, bad = document["quantities"]["drift[AI,0,0]"], document["quantities"]["drift[AI,0,1]"]
    assert good["uniformity_pvalue"] > 0.01 and not good["outside_band"]
    assert bad["uniformity_pvalue"] < 1e-6 and bad["outside_band"]
    assert bad["mean_pit"] > 0.6
    assert document["summary"]["min_pvalue_quantity"] == "drift[AI,0,1]"
    assert document["summary"]["quantities"] == 2


def test_overdispersed_posteriors_show_as_a_hump_in_coverage(rng):
    """Too-wide posteriors put the truth near the middle: 90% intervals cover everything."""
    pit = 0.5 + 0.3 * (rng.uniform(size=(400, 1)) - 0.5)
    result = xr.Dataset({"pit": (("simulation", "quantity"), pit)}, coords={"quantity": ["x"]})
    entry = sbc_uniformity(result)["quantities"]["x"]
    assert entry["coverage_90"] == 1.0 and entry["outside_band"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"simulations": 0}, "simulations=0 must be a positive integer"),
        ({"thin_to": 1}, "thin_to=1 must lie between"),
        ({"thin_to": 5000}, "thin_to=5000 must lie between"),
        ({"seed": -1}, "seed=-1 must be a non-negative integer"),
        ({"strategies": ("A", "A")}, "must be distinct names"),
    ],
)
def test_settings_are_checked(changes, message):
    values = {"simulations": 2, "sessions_per_strategy": 2, "steps": 2} | changes
    with pytest.raises(ValueError, match=message):
        SBCSettings(load_spec("hierarchical"), **values)


def test_resuming_with_other_settings_is_refused(tmp_path, settings):
    output = tmp_path / "sbc.nc"
    sbc._prepare_work_directory(settings, output)
    more = SBCSettings(settings.spec, simulations=9, sessions_per_strategy=3, steps=4)
    sbc._prepare_work_directory(more, output)  # only the number of simulations changed
    other = SBCSettings(settings.spec, simulations=4, sessions_per_strategy=3, steps=5)
    with pytest.raises(SdebayesError, match=r"other settings \(differing: steps\)"):
        sbc._prepare_work_directory(other, output)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--strategies", "A,A", "must be distinct comma-separated names"),
        ("--thin-to", "5000", "must lie between --chains"),
        ("--model", "nope", "nope: no such model file"),
    ],
)
def test_command_rejects_bad_options(tmp_path, option, value, message):
    output = tmp_path / "sbc.nc"
    arguments = ["sbc", "--simulations", "2", "--sessions-per-strategy", "2", "--steps", "2"]
    result = runner.invoke(app, [*arguments, "--output", str(output), option, value])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not output.exists()


def test_missing_output_directory_fails_before_any_fit(tmp_path):
    arguments = ["sbc", "--simulations", "2", "--sessions-per-strategy", "2", "--steps", "2"]
    result = runner.invoke(app, [*arguments, "--output", str(tmp_path / "no" / "sbc.nc")])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output


SMALL = [
    "--sessions-per-strategy",
    "8",
    "--steps",
    "5",
    "--draws",
    "200",
    "--tune",
    "200",
    "--thin-to",
    "40",
    "--seed",
    "7",
]


@pytest.mark.slow
def test_small_sbc_run_resumes_and_reports(tmp_path):
    """Six simulations, then two more: the first six are reused, not refitted.

    Shares the compiled hierarchical model (4 strategies x 3 objectives) with the other fits
    of the test session; each fit then takes about a second.
    """
    output, figure = tmp_path / "sbc.nc", tmp_path / "sbc.png"
    first = runner.invoke(app, ["sbc", "--simulations", "6", *SMALL, "-o", str(output), "--json"])
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    assert document["simulations"] == 6 and document["completed"] + document["failed"] == 6
    assert {"drift[AI,0,1]", "convergence_rate[EF]", "equilibrium[SF,2]"} <= set(
        document["quantities"]
    )
    entry = document["quantities"]["convergence_rate[EF]"]
    assert {"uniformity_pvalue", "outside_band", "coverage_50", "coverage_90"} <= set(entry)
    work = sbc.work_directory(output)
    stamps = {path.name: path.stat().st_mtime_ns for path in work.glob("simulation-*.json")}
    assert len(stamps) == 6

    second = runner.invoke(
        app, ["sbc", "--simulations", "8", *SMALL, "-o", str(output), "--plot", str(figure)]
    )
    assert second.exit_code == 0, second.output
    assert "Result written to" in second.stdout and figure.stat().st_size > 10_000
    for name, stamp in stamps.items():
        assert (work / name).stat().st_mtime_ns == stamp, name  # not refitted
    result = sbc.load_sbc(output)
    assert result.sizes["simulation"] == 8
    ranks = result["rank"].where(result["ok"]).to_numpy()
    finite = ranks[np.isfinite(ranks)]
    assert finite.min() >= 0 and finite.max() <= 40
    assert_array_equal(np.isfinite(result["pit"]).any("quantity"), result["ok"])
