"""Posterior predictive checks: replicates, statistics, p-values and the ppc command.

Most tests use a synthetic fit whose posterior puts all its mass on known parameters, so
that the replicates' moments and the p-values can be checked against the truth without
sampling. ``synthetic_fit`` is also used by the plot, contrast and report tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal
from typer.testing import CliRunner

from sdebayes import dynamics
from sdebayes.cli import app
from sdebayes.data import trajectories_from_frame, transitions
from sdebayes.exceptions import DataError
from sdebayes.io_netcdf import save_posterior
from sdebayes.ppc import (
    STATISTICS,
    posterior_predictive_check,
    replicate_trajectories,
)
from sdebayes.sufficient_stats import standardization, sufficient_statistics

runner = CliRunner()

DRIFT = np.array([[-0.4, 0.1, 0.0], [0.0, -0.3, 0.05], [0.1, 0.0, -0.6]])
INTERCEPT = np.array([2.0, 1.5, 4.0])
COVARIANCE = np.array([[0.30, 0.06, -0.03], [0.06, 0.20, 0.02], [-0.03, 0.02, 0.40]])


def synthetic_fit(
    seed: int = 1,
    *,
    strategies: tuple[str, ...] = ("S1", "S2"),
    n_sessions: int = 60,
    n_steps: int = 6,
    times: np.ndarray | None = None,
    noise_scale: float = 1.0,
    autocorrelation: float = 0.0,
    n_chains: int = 2,
    n_draws: int = 100,
    jitter: float = 0.0,
    constant_objective: str | None = None,
) -> xr.DataTree:
    """A fit-like DataTree whose posterior draws sit at (or, with jitter, near) the truth.

    Data are simulated by Euler-Maruyama from ``DRIFT`` (scaled per strategy), ``INTERCEPT``
    and ``COVARIANCE`` times ``noise_scale``; ``autocorrelation`` makes the noise AR(1), a
    misspecification the residual autocorrelation check must detect.
    """
    rng = np.random.default_rng(seed)
    objectives = ["security", "efficiency", "functionality"]
    times = np.arange(n_steps + 1, dtype=float) if times is None else np.asarray(times, float)
    truth = {
        name: (DRIFT * (1 + 0.5 * k), INTERCEPT * (1 + 0.5 * k), COVARIANCE)
        for k, name in enumerate(strategies)
    }
    rows = []
    for name, (drift, intercept, cov) in truth.items():
        chol = np.linalg.cholesky(cov)
        for session in range(n_sessions):
            x = rng.normal(5.0, 1.0, 3)
            previous = np.zeros(3)
            for step, time in enumerate(times):
                if step > 0:
                    dt = time - times[step - 1]
                    fresh = chol @ rng.standard_normal(3) * np.sqrt(dt)
                    shock = autocorrelation * previous + np.sqrt(1 - autocorrelation**2) * fresh
                    previous = shock
                    x = x + (drift @ x + intercept) * dt + noise_scale * shock
                values = x.copy()
                if constant_objective is not None and name == strategies[0]:
                    values[objectives.index(constant_objective)] = 7.0
                rows.append([f"{name}-{session}", name, step, time, *values])
    frame = pd.DataFrame(rows, columns=["session", "strategy", "step", "time", *objectives])
    trajectories = trajectories_from_frame(frame, source="synthetic.csv")

    steps = transitions(trajectories)
    location, scale = standardization(trajectories)
    statistics = sufficient_statistics(steps, location, scale, list(strategies))
    shape = (n_chains, n_draws)
    noise = rng.standard_normal((*shape, len(strategies), 3, 3)) * jitter
    drift = np.stack([truth[name][0] for name in strategies]) + noise
    intercept = np.broadcast_to(np.stack([truth[name][1] for name in strategies]), noise.shape[:-1])
    cov = np.broadcast_to(np.stack([truth[name][2] for name in strategies]), noise.shape)
    if constant_objective is not None:
        cov = cov.copy()
        k = objectives.index(constant_objective)
        cov[..., 0, k, :] = 0.0
        cov[..., 0, :, k] = 0.0
        cov[..., 0, k, k] = 1e-4
    scores = trajectories["scores"]
    bounds = (scores.min(("session", "step")).values, scores.max(("session", "step")).values)
    posterior = dynamics.derived_quantities(drift, intercept.copy(), cov.copy(), statistics, bounds)
    posterior = posterior.assign_coords(chain=np.arange(n_chains), draw=np.arange(n_draws))
    observed = trajectories[["scores", "time"]].copy()
    observed.attrs = {}
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": xr.Dataset(
                {"diverging": (("chain", "draw"), np.zeros(shape, bool))},
                coords={"chain": np.arange(n_chains), "draw": np.arange(n_draws)},
            ),
            "observed_data": observed,
            "constant_data": statistics,
        }
    )
    tree.attrs.update(
        data_source="synthetic.csv",
        model_name="synthetic",
        discretization="euler",
        diagnostics=json.dumps(
            {
                "sampler": "none",
                "chains": n_chains,
                "draws": n_draws,
                "max_rhat": 1.0,
                "min_ess_bulk": 1000.0,
                "divergences": 0,
                "seconds": 0.0,
                "passed": True,
            }
        ),
    )
    return tree


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_fit()


def rows_of(check, name):
    return [row for row in check.rows() if row["name"] == name]


def test_replicates_start_from_the_observed_first_version_and_keep_lengths():
    tree = synthetic_fit(n_sessions=5, n_steps=3)
    observed, replicates = replicate_trajectories(tree, n_draws=20, random_seed=3)
    first = np.r_[True, observed["session"].values[1:] != observed["session"].values[:-1]]
    simulated = replicates["scores"].values

    assert simulated.shape == (20, observed.sizes["version"], 3)
    assert_array_equal(
        simulated[:, first],
        np.broadcast_to(observed["scores"].values[first], simulated[:, first].shape),
    )
    assert not np.allclose(simulated[:, ~first], observed["scores"].values[~first])
    assert_array_equal(replicates["session"].values, observed["session"].values)


def test_one_step_replicates_have_the_model_mean_and_covariance():
    # One step from fixed states: the replicated change is N(A x0 + b, Sigma) exactly, so the
    # sample moments over 4000 draws must match to Monte Carlo error. Tolerances: 4.5
    # standard errors of the mean (sd / sqrt(4000)) and about 5% of each covariance entry.
    tree = synthetic_fit(n_sessions=3, n_steps=1, n_chains=4, n_draws=1000)
    observed, replicates = replicate_trajectories(tree, n_draws=4000, random_seed=7)
    start = observed["scores"].values[0::2]
    change = replicates["scores"].values[:, 1::2] - start
    for k, name in enumerate(observed["strategy"].values[0::2]):
        scale = 1 + 0.5 * ["S1", "S2"].index(name)
        expected = (DRIFT * scale) @ start[k] + INTERCEPT * scale
        error = np.sqrt(np.diag(COVARIANCE) / 4000)
        assert_allclose(change[:, k].mean(axis=0), expected, atol=4.5 * error.max())
        assert_allclose(np.cov(change[:, k].T), COVARIANCE, atol=0.03)


def test_replicate_variance_grows_with_the_time_step():
    # With irregular times the Euler step over dt has covariance Sigma dt: check the ratio of
    # the replicated change variances over a 3-unit gap and a 1-unit gap (tolerance 10%:
    # variance estimates from 3000 draws x 4 sessions have a relative sd of about 1.3%).
    tree = synthetic_fit(n_sessions=2, n_steps=2, times=[0.0, 1.0, 4.0], n_draws=1500)
    _, replicates = replicate_trajectories(tree, n_draws=3000, random_seed=2)
    simulated = replicates["scores"].values
    short = simulated[:, 1::3] - simulated[:, 0::3]
    long = simulated[:, 2::3] - simulated[:, 1::3]
    conditional = long - np.einsum("ij,dkj->dki", DRIFT, simulated[:, 1::3]) * 3.0
    ratio = conditional[:, :2].var(axis=0).mean() / short[:, :2].var(axis=0).mean()
    assert ratio == pytest.approx(3.0, rel=0.1)


def test_exact_fits_are_replicated_with_the_exact_transition():
    # A fit with the exact (Ornstein-Uhlenbeck) transition must be replicated with it: over
    # dt = 2 the mean change from x0 is (expm(2A) - I) x0 + A^-1 (expm(2A) - I) b, computed
    # here independently with scipy; tolerance 4.5 standard errors of 4000 draws.
    pytest.importorskip("sdebayes.transitions")
    from scipy.linalg import expm

    tree = synthetic_fit(n_sessions=2, n_steps=1, times=[0.0, 2.0], n_chains=4, n_draws=1000)
    tree.attrs["discretization"] = "exact"
    observed, replicates = replicate_trajectories(tree, n_draws=4000, random_seed=7)
    start = observed["scores"].values[0]
    change = replicates["scores"].values[:, 1] - start
    transition = expm(2 * DRIFT)
    expected = (transition - np.eye(3)) @ start + np.linalg.solve(
        DRIFT, (transition - np.eye(3)) @ INTERCEPT
    )
    assert replicates.attrs["discretization"] == "exact"
    assert_allclose(change.mean(axis=0), expected, atol=4.5 * np.sqrt(0.4 * 2 / 4000))


def test_unknown_discretization_is_refused(synthetic):
    tree = synthetic.copy()
    tree.attrs["discretization"] = "milstein"
    with pytest.raises(NotImplementedError, match=r"discretization='milstein' has no replicate"):
        replicate_trajectories(tree, n_draws=5)


def test_same_seed_same_replicates_other_seed_other_replicates(synthetic):
    first = replicate_trajectories(synthetic, n_draws=30, random_seed=5)[1]
    again = replicate_trajectories(synthetic, n_draws=30, random_seed=5)[1]
    other = replicate_trajectories(synthetic, n_draws=30, random_seed=6)[1]
    assert_array_equal(first["scores"].values, again["scores"].values)
    assert not np.allclose(first["scores"].values, other["scores"].values)


def test_thinning_picks_distinct_draws_and_caps_at_the_posterior_size(synthetic):
    replicates = replicate_trajectories(synthetic, n_draws=10_000, random_seed=1)[1]
    pairs = set(zip(replicates["chain"].values, replicates["posterior_draw"].values, strict=True))
    assert replicates.sizes["draw"] == 200 and len(pairs) == 200


def test_no_model_is_built_or_compiled(monkeypatch, synthetic):
    import sdebayes.fit
    import sdebayes.model

    def refuse(*args, **kwargs):
        raise AssertionError("the check must not build or compile a PyMC model")

    monkeypatch.setattr(sdebayes.model, "build_model", refuse)
    monkeypatch.setattr(sdebayes.fit, "_compiled_nutpie", refuse)
    assert posterior_predictive_check(synthetic, n_draws=20).rows()


def test_well_specified_data_give_no_extreme_residual_or_pit_check(synthetic):
    # The data come from the parameters the posterior sits on, so every p-value is a draw
    # from (nearly) a uniform distribution; with the fixed seeds none of the residual and
    # PIT checks is extreme at the 1% level (a false alarm would show as a failure here).
    check = posterior_predictive_check(synthetic, n_draws=200, random_seed=4)
    for row in rows_of(check, "residual_autocorrelation"):
        assert 0.005 < row["p_value"] < 0.995, row
    for row in rows_of(check, "final_pit"):
        assert row["p_value"] > 0.01, row


def test_autocorrelated_noise_is_detected():
    # AR(1) noise with coefficient 0.6: the observed lag-1 residual autocorrelation is near
    # 0.6 while the replicates' is near 0 with sd about 1/sqrt(300 pairs) = 0.06.
    tree = synthetic_fit(autocorrelation=0.6)
    check = posterior_predictive_check(tree, n_draws=200, random_seed=4)
    rows = rows_of(check, "residual_autocorrelation")
    assert all(row["p_value"] == 0.0 for row in rows), rows
    assert all(row["observed"] > 0.3 for row in rows), rows
    assert {(r["strategy"], r["objective"]) for r in rows} <= {
        (r["strategy"], r["objective"]) for r in check.extreme()
    }


def test_too_little_noise_in_the_posterior_is_detected():
    # Data with twice the posterior's noise sd: replicated final scores are too concentrated,
    # so the final-score sd sits above every replicate and the PIT values pile in the tails.
    tree = synthetic_fit(noise_scale=2.0)
    check = posterior_predictive_check(tree, n_draws=200, random_seed=4)
    assert all(row["p_value"] == 0.0 for row in rows_of(check, "change_sd"))
    assert all(row["p_value"] < 0.01 for row in rows_of(check, "final_pit"))
    assert all(row["observed"] > 0.3 for row in rows_of(check, "final_pit"))


def test_rows_cover_every_statistic_strategy_and_entry(synthetic):
    check = posterior_predictive_check(synthetic, n_draws=50)
    rows = check.rows()
    assert {row["name"] for row in rows} == set(STATISTICS)
    assert len(rows) == 2 * (len(STATISTICS) - 1) * 3 + 2 * 3  # 3 objectives, 3 pairs
    assert set(rows[0]) == {"strategy", "objective", "name", "observed", "p_value"}
    pairs = {row["objective"] for row in rows_of(check, "interference")}
    assert pairs == {"security~efficiency", "security~functionality", "efficiency~functionality"}
    json.dumps(rows, allow_nan=False)


def test_statistics_match_a_direct_computation(synthetic):
    check = posterior_predictive_check(synthetic, n_draws=50)
    scores = synthetic["observed_data"]["scores"].values
    strategy = synthetic["observed_data"]["strategy"].values == "S2"
    change = np.diff(scores[strategy], axis=1).reshape(-1, 3)
    final = scores[strategy][:, -1]
    row = {
        (r["objective"], r["name"]): r["observed"] for r in check.rows() if r["strategy"] == "S2"
    }
    assert_allclose(row[("efficiency", "change_sd")], change[:, 1].std(ddof=1), atol=1e-4)
    assert_allclose(row[("security", "change_mean")], change[:, 0].mean(), atol=1e-4)
    corr = np.corrcoef(change.T)[0, 2]
    assert_allclose(row[("security~functionality", "interference")], corr, atol=1e-4)
    assert_allclose(row[("functionality", "final_q90")], np.quantile(final[:, 2], 0.9), atol=1e-4)


def test_p_values_count_ties_half():
    from sdebayes.ppc import _p_values

    observed = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, np.nan, 0.0]])
    replicated = np.array([[1.0, 2.0, 0.0, 1.0], [1.0, 1.0, 1.0, np.nan]])
    assert_allclose(_p_values(observed, replicated), [(0.5 + 1 + 0 + 0.5) / 4, 1.0])


def test_two_version_sessions_leave_the_residual_autocorrelation_undefined():
    tree = synthetic_fit(n_steps=1)
    check = posterior_predictive_check(tree, n_draws=30)
    assert all(row["p_value"] is None for row in rows_of(check, "residual_autocorrelation"))
    assert all(row["p_value"] is not None for row in rows_of(check, "change_sd"))


def test_an_objective_constant_within_a_strategy_is_flagged():
    # S1's efficiency never changes; the posterior still has a diffusion floor, so every
    # replicate has some variation and the observed sd of 0 sits below all of them (p = 1).
    tree = synthetic_fit(constant_objective="efficiency")
    check = posterior_predictive_check(tree, n_draws=50)
    row = next(
        r
        for r in check.rows()
        if (r["strategy"], r["objective"], r["name"]) == ("S1", "efficiency", "change_sd")
    )
    assert row["observed"] == 0.0 and row["p_value"] == 1.0
    assert row in check.extreme()


def test_extreme_rejects_a_bad_tail(synthetic):
    check = posterior_predictive_check(synthetic, n_draws=20)
    with pytest.raises(ValueError, match=r"tail=0\.7 must lie strictly between 0 and 0\.5"):
        check.extreme(0.7)


@pytest.mark.parametrize("n_draws", [0, -3, 2.5, True])
def test_bad_draw_counts_are_rejected(synthetic, n_draws):
    with pytest.raises(ValueError, match=r"n_draws=.* must be a positive integer"):
        replicate_trajectories(synthetic, n_draws=n_draws)


def test_other_objectives_are_rejected(synthetic):
    data = synthetic["observed_data"].to_dataset().isel(objective=[0, 1])
    with pytest.raises(DataError, match=r"objectives security, efficiency differ from"):
        posterior_predictive_check(synthetic, data)


def test_unknown_strategies_are_rejected(synthetic):
    data = synthetic["observed_data"].to_dataset()
    data = data.assign_coords(strategy=("session", np.where(data.strategy == "S1", "S9", "S2")))
    with pytest.raises(DataError, match=r"strategy\(ies\) 'S9' are not in the posterior"):
        posterior_predictive_check(synthetic, data)


def test_given_data_are_checked_instead_of_the_stored_ones(synthetic):
    data = synthetic["observed_data"].to_dataset()
    subset = data.isel(session=np.flatnonzero(data.strategy.values == "S2")[:10])
    subset.attrs["source"] = "subset"
    check = posterior_predictive_check(synthetic, subset, n_draws=20)
    assert {row["strategy"] for row in check.rows()} == {"S2"}
    assert check.observed.sizes["version"] == 10 * 7


def test_ppc_command_writes_figures_and_json(tmp_path):
    posterior = save_posterior(synthetic_fit(n_sessions=20), tmp_path / "fit.nc")
    directory = tmp_path / "checks"
    result = runner.invoke(
        app, ["ppc", str(posterior), "--output-dir", str(directory), "--draws", "40", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) >= {"statistics", "figures"}
    assert {"strategy", "objective", "name", "observed", "p_value"} == set(
        document["statistics"][0]
    )
    names = {Path(path).name for path in document["figures"]}
    assert {"trajectories.png", "eigenvalues.png", "ppc_final_pit.png"} <= names
    assert all(Path(path).is_file() for path in document["figures"])
    assert json.loads((directory / "ppc.json").read_text()) == document


def test_ppc_command_reads_other_data(tmp_path):
    tree = synthetic_fit(n_sessions=10)
    posterior = save_posterior(tree, tmp_path / "fit.nc")
    table = tmp_path / "new.csv"
    scores = tree["observed_data"].to_dataset().to_dataframe().reset_index()
    wide = scores.pivot_table(
        index=["session", "strategy", "step"], columns="objective", values="scores"
    ).reset_index()
    wide[wide["strategy"] == "S1"].to_csv(table, index=False)
    result = runner.invoke(
        app,
        ["ppc", str(posterior), str(table), "-o", str(tmp_path / "out"), "--json", "--draws", "20"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["data"] == str(table)
    assert {row["strategy"] for row in document["statistics"]} == {"S1"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.nc"], r"missing\.nc: no such file"),
        (["{posterior}", "--output-dir", "{tmp}/no/such/dir"], r"its parent .* does not exist"),
        (["{posterior}", "{tmp}/nothing.csv"], r"nothing\.csv: no such file"),
        (["{posterior}", "--ci-prob", "1.5"], r"1\.5 must lie between 0 and 1"),
    ],
)
def test_ppc_command_fails_with_one_line(tmp_path, arguments, message):
    posterior = save_posterior(synthetic_fit(n_sessions=5), tmp_path / "fit.nc")
    arguments = [a.format(posterior=posterior, tmp=tmp_path) for a in arguments]
    if "--output-dir" not in arguments:
        arguments += ["--output-dir", str(tmp_path / "out")]
    result = runner.invoke(app, ["ppc", *arguments])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "out" / "ppc.json").exists()


@pytest.mark.slow
def test_default_posterior_reproduces_its_data(paper_fit, tmp_path):
    # The bundled data were simulated from the model, so p-values should be near uniform:
    # about 5% extreme by chance. A share above 15% (three times that) would mean the
    # replicates or the statistics are wrong, or the fit does not reproduce its data.
    check = posterior_predictive_check(paper_fit, random_seed=1)
    rows = check.rows()
    assert {row["strategy"] for row in rows} == {"EF", "SF", "FF", "AI"}
    defined = [row for row in rows if row["p_value"] is not None]
    assert len(defined) == len(rows) == 4 * ((len(STATISTICS) - 1) * 3 + 3)
    assert len(check.extreme()) <= 0.15 * len(defined), check.extreme()


@pytest.mark.slow
def test_ppc_command_on_the_default_posterior(paper_fit, tmp_path):
    posterior = save_posterior(paper_fit, tmp_path / "paper.nc")
    result = runner.invoke(app, ["ppc", str(posterior), "--svg"])
    assert result.exit_code == 0, result.output
    directory = tmp_path / "paper-ppc"
    assert (directory / "ppc.json").is_file()
    for name in (
        "trajectories",
        "eigenvalues",
        "interference",
        "convergence_rates",
        "equilibria",
        "ppc_pvalues",
        "ppc_final_pit",
    ):
        assert (directory / f"{name}.png").stat().st_size > 10_000, name
        assert (directory / f"{name}.svg").read_text()[:200].lstrip().startswith("<?xml")
    assert "p-values are extreme" in result.output
