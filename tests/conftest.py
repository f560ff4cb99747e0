"""Shared fixtures: seeded randomness and small tables built in memory."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas():
    """Run tests as the command line runs: BLAS on one thread (see sdebayes.cli._app)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator, so every test draws the same numbers on every run."""
    return np.random.default_rng(20251012)


@pytest.fixture(scope="session")
def paper_fit():
    """The default model fitted once to the bundled paper data with default settings.

    Shared by every test that needs a posterior: the model compiles once per test session
    (about 30 s warm, 2-3 minutes on a machine that never compiled it) and later fits with
    the same shapes reuse it.
    """
    from sdebayes.data import read_trajectories
    from sdebayes.datasets import paper_sessions_path
    from sdebayes.fit import fit

    return fit(read_trajectories(paper_sessions_path()), random_seed=11, progressbar=False)
