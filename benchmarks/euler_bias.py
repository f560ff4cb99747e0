"""How far the Euler-Maruyama model lands when versions are more than one unit of time apart.

Under the exact linear SDE the mean change over a gap dt is (expm(A dt) - I) x + ..., while
the Euler model reads it as A_euler dt x. With plenty of data the Euler fit therefore tends to
A_euler = (expm(A dt) - I) / dt, whose slowest decay rate is no longer the true one. This
script draws that limit for the paper-calibrated strategies over a range of dt, and checks it
against least-squares Euler fits of data simulated exactly with every gap equal to dt.

Run: ``.venv/bin/python benchmarks/euler_bias.py`` (about a minute). It writes
``docs/euler_bias.png`` and prints the table pasted into ``docs/continuous_time.md``.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

from sdebayes.dynamics import convergence_rate, sorted_eigenvalues
from sdebayes.simulate import paper_scenario, simulate_sessions

STEPS = np.geomspace(0.25, 4.0, 33)
CHECKED = (0.5, 1.0, 2.0, 4.0)
SESSIONS = 2000


def euler_limit(drift: np.ndarray, dt: float) -> float:
    """Rate of the drift an Euler fit converges to on data with gaps dt."""
    effective = (scipy.linalg.expm(drift * dt) - np.eye(len(drift))) / dt
    return float(convergence_rate(sorted_eigenvalues(effective)[0]))


def least_squares_rate(table, objectives, dt: float) -> float:
    """Euler least squares on one strategy's table: regress dx / dt on [x, 1]."""
    states, changes = [], []
    for _, session in table.groupby("session"):
        values = session[objectives].to_numpy()
        states.append(values[:-1])
        changes.append(np.diff(values, axis=0) / dt)
    design = np.column_stack([np.concatenate(states), np.ones(sum(map(len, states)))])
    coefficients, *_ = np.linalg.lstsq(design, np.concatenate(changes), rcond=None)
    return float(convergence_rate(sorted_eigenvalues(coefficients[:-1].T)[0]))


def main() -> None:
    scenario = paper_scenario()
    objectives = list(scenario.objectives)
    figure, axis = plt.subplots(figsize=(7, 4.5), layout="constrained")
    print("| strategy | true rate | " + " | ".join(f"Euler, dt = {dt:g}" for dt in CHECKED) + " |")
    print("|---|---|" + "---|" * len(CHECKED))
    for name, truth in scenario.strategies.items():
        rate = float(convergence_rate(sorted_eigenvalues(truth.drift)[0]))
        drawn = rate > 0.05  # a ratio to a near-zero rate says nothing
        if drawn:
            limits = np.array([euler_limit(truth.drift, dt) for dt in STEPS])
            line = axis.plot(STEPS, limits / rate, label=name)
        cells = []
        for dt in CHECKED:
            table = simulate_sessions(
                scenario, SESSIONS, 10, random_seed=int(dt * 100), time_step=dt
            )
            fitted = least_squares_rate(table[table["strategy"] == name], objectives, dt)
            cells.append(f"{fitted:.3f} (limit {euler_limit(truth.drift, dt):.3f})")
            if drawn:
                axis.plot(dt, fitted / rate, "o", color=line[0].get_color())
        print(f"| {name} | {rate:.3f} | " + " | ".join(cells) + " |")

    axis.axhline(1.0, color="grey", linewidth=0.8)
    axis.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xscale("log")
    axis.set_xlabel("time between logged versions, dt (rounds)")
    axis.set_ylabel("Euler rate / true rate")
    axis.set_title(
        "Euler-Maruyama underestimates convergence rates when dt > 1\n"
        "lines: large-sample limit; dots: least squares on 2,000 exact sessions per strategy",
        fontsize=10,
    )
    axis.legend(title="strategy (FF: rate 0.01, not drawn)", fontsize=9)
    figure.savefig("docs/euler_bias.png", dpi=120)


if __name__ == "__main__":
    main()
