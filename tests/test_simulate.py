import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sdebayes import datasets, dynamics
from sdebayes.simulate import paper_scenario, simulate_sessions, truth_document


def test_paper_scenario_has_the_published_structure():
    scenario = paper_scenario()
    assert list(scenario.strategies) == ["EF", "SF", "FF", "AI"]

    published_rates = {"EF": 0.33, "SF": 1.08, "FF": 0.01, "AI": 0.15}  # FF: see Notes
    published_equilibria = {
        "EF": [5.25, 4.65, 7.26],
        "SF": [5.75, 3.90, 8.20],
        "FF": [0.00, 2.10, 8.75],
        "AI": [4.00, 4.20, 8.20],
    }
    for name, truth in scenario.strategies.items():
        real, imag = dynamics.sorted_eigenvalues(truth.drift)
        assert dynamics.convergence_rate(real) == pytest.approx(published_rates[name])
        point, _ = dynamics.equilibrium(truth.drift, truth.intercept)
        assert_allclose(point, published_equilibria[name], atol=1e-12)
        assert np.any(np.abs(imag) > 0.05) == (name == "SF")


def test_simulation_is_reproducible_and_shaped():
    first = simulate_sessions(paper_scenario(), 3, 4, random_seed=7)
    second = simulate_sessions(paper_scenario(), 3, 4, random_seed=7)
    assert first.equals(second)
    assert len(first) == 4 * 3 * 5
    assert first.groupby("session")["strategy"].nunique().max() == 1


def test_simulation_follows_the_euler_step():
    """With the noise removed, one simulated step is x + A x + b exactly."""
    scenario = paper_scenario()
    truth = scenario.strategies["EF"]
    zero_noise = type(truth)(
        truth.drift, truth.intercept, 1e-300 * np.eye(3), truth.initial_mean, truth.initial_sd
    )
    scenario = type(scenario)(scenario.name, scenario.objectives, {"EF": zero_noise})
    table = simulate_sessions(scenario, 1, 1, random_seed=1)
    x0, x1 = table[list(scenario.objectives)].to_numpy()
    assert_allclose(x1, x0 + truth.drift @ x0 + truth.intercept, rtol=1e-12)


def test_bundled_truth_matches_regenerated_data():
    """data/paper_truth.json and paper_sessions.csv come from the documented command."""
    table = simulate_sessions(paper_scenario(), 100, 10, random_seed=datasets.PAPER_SEED).round(6)
    bundled = np.loadtxt(
        datasets.paper_sessions_path(), delimiter=",", skiprows=1, usecols=(3, 4, 5)
    )
    # 1e-6: the CSV holds six decimals.
    assert_allclose(bundled, table[["security", "efficiency", "functionality"]], atol=1e-6)

    document = truth_document(paper_scenario(), table, random_seed=datasets.PAPER_SEED)
    stored = datasets.paper_truth()
    assert stored["seed"] == datasets.PAPER_SEED
    for name in ("EF", "SF", "FF", "AI"):
        for key in ("drift", "intercept", "convergence_rate", "equilibrium", "r2", "mode"):
            expected = document["strategies"][name][key]
            got = stored["strategies"][name][key]
            if isinstance(expected, str):
                assert got == expected
            else:
                assert_allclose(
                    np.array(got, dtype=float),
                    np.array(expected, dtype=float),
                    rtol=1e-8,
                    atol=1e-12,
                )
    json.dumps(stored, allow_nan=False)  # plain numbers only
