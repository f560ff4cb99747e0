r"""Transition moments of the linear SDE: Euler-Maruyama and exact (Ornstein-Uhlenbeck).

For :math:`dx = (A x + c)\,dt + L\,dW` in centred coordinates, the change over a time step
:math:`\Delta t` is Gaussian with mean :math:`(F - I) x + g` and covariance :math:`Q`:

* Euler-Maruyama: :math:`F - I = A\Delta t`, :math:`g = c\Delta t`, :math:`Q = \Sigma\Delta t`.
* Exact: :math:`F = e^{A\Delta t}`, :math:`g = \int_0^{\Delta t} e^{Au}\,du\; c` and
  :math:`Q = \int_0^{\Delta t} e^{Au}\,\Sigma\,e^{A^\top u}\,du`.

The exact moments come from two matrix exponentials that never invert :math:`A`, so they stay
correct when :math:`A` is singular or nearly so:

.. math::

    \exp\left(\begin{bmatrix} A & c \\ 0 & 0 \end{bmatrix}\Delta t\right)
    = \begin{bmatrix} F & g \\ 0 & 1 \end{bmatrix},
    \qquad
    \exp\left(\begin{bmatrix} -A & \Sigma \\ 0 & A^\top \end{bmatrix}\Delta t\right)
    = \begin{bmatrix} \cdot & M_{12} \\ 0 & M_{22} \end{bmatrix},
    \quad Q = M_{22}^\top M_{12}

(the second is Van Loan's formula, [1]_). Each function exists for NumPy arrays (derived
quantities, simulation) and for PyTensor tensors (the model, differentiable through PyTensor's
``expm``). Leading dimensions broadcast: drift ``(..., n, n)`` with time steps ``(k,)`` give
moments ``(..., k, n, n)``.

References
----------
.. [1] Van Loan, C. F. (1978). Computing integrals involving the matrix exponential.
   IEEE Transactions on Automatic Control 23(3), 395-404.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pytensor.tensor as pt
import scipy.linalg
import xarray as xr
from pytensor.tensor.linalg import expm as tensor_expm

__all__ = [
    "DISCRETIZATIONS",
    "choose_discretization",
    "exact_moments",
    "exact_moments_tensor",
    "fit_measures",
    "interval_moments",
    "regression_loglik_cov_tensor",
    "regression_loglik_tensor",
    "step_multiples",
    "stepped_moments_tensor",
    "typical_step",
]

logger = logging.getLogger(__name__)

DISCRETIZATIONS = ("euler", "exact")
"""Transition densities sdebayes can fit."""


def exact_moments(
    drift: np.ndarray, centre_drift: np.ndarray, diffusion_cov: np.ndarray, dt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Exact transition matrix, shift and covariance over each time step (NumPy).

    Parameters
    ----------
    drift : numpy.ndarray, shape (..., n, n)
    centre_drift : numpy.ndarray, shape (..., n)
        Drift at the centre of the coordinates (the intercept when states are not centred).
    diffusion_cov : numpy.ndarray, shape (..., n, n)
    dt : numpy.ndarray, shape (k,)

    Returns
    -------
    transition : numpy.ndarray, shape (..., k, n, n)
        :math:`F = e^{A\Delta t}`.
    shift : numpy.ndarray, shape (..., k, n)
        :math:`g = \int_0^{\Delta t} e^{Au} du\, c`.
    covariance : numpy.ndarray, shape (..., k, n, n)
        :math:`Q`, symmetrised.

    Examples
    --------
    >>> F, g, Q = exact_moments(np.array([[-1.0]]), np.array([1.0]), np.array([[2.0]]),
    ...                         np.array([1.0]))
    >>> np.round([F[0, 0, 0], g[0, 0], Q[0, 0, 0]], 6).tolist()
    [0.367879, 0.632121, 0.864665]
    """
    drift, centre_drift, diffusion_cov = map(np.asarray, (drift, centre_drift, diffusion_cov))
    dt = np.asarray(dt, dtype=float)
    n = drift.shape[-1]
    scale = dt[:, None, None]

    mean_generator = _mean_generator(drift, centre_drift, np)
    mean_exp = scipy.linalg.expm(mean_generator[..., None, :, :] * scale)
    covariance_exp = scipy.linalg.expm(
        _van_loan_generator(drift, diffusion_cov, np)[..., None, :, :] * scale
    )
    return _split(mean_exp, covariance_exp, n, np)


def exact_moments_tensor(
    drift: pt.TensorLike,
    centre_drift: pt.TensorLike,
    diffusion_cov: pt.TensorLike,
    dt: pt.TensorLike,
) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    """PyTensor twin of :func:`exact_moments`, differentiable in every argument but ``dt``."""
    drift, centre_drift, diffusion_cov, dt = map(
        pt.as_tensor, (drift, centre_drift, diffusion_cov, dt)
    )
    n = drift.type.shape[-1] or drift.shape[-1]
    scale = dt[:, None, None]

    mean_exp = tensor_expm(_mean_generator(drift, centre_drift, pt)[..., None, :, :] * scale)
    covariance_exp = tensor_expm(
        _van_loan_generator(drift, diffusion_cov, pt)[..., None, :, :] * scale
    )
    return _split(mean_exp, covariance_exp, n, pt)


def stepped_moments_tensor(
    drift: pt.TensorLike,
    centre_drift: pt.TensorLike,
    diffusion_cov: pt.TensorLike,
    unit: float,
    multiples: tuple[int, ...],
) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    r"""Exact moments over whole multiples of one time unit, from one exponential per matrix.

    When every time step is :math:`k h` for a unit :math:`h` (steps of a session with some
    rounds skipped, timestamps on a grid), the moments over :math:`k h` follow from those
    over :math:`h` by the recursions :math:`F_k = F_1 F_{k-1}`,
    :math:`g_k = F_1 g_{k-1} + g_1` and :math:`Q_k = F_1 Q_{k-1} F_1^\top + Q_1`. That costs
    two matrix exponentials per strategy instead of two per strategy and distinct step.

    Parameters
    ----------
    drift, centre_drift, diffusion_cov : tensor
        As in :func:`exact_moments_tensor`.
    unit : float
        The time unit :math:`h`.
    multiples : tuple of int
        The multiple :math:`k \ge 1` of every distinct time step, in order.

    Returns
    -------
    transition, shift, covariance : tensor
        As :func:`exact_moments_tensor`, one entry per multiple.
    """
    one = exact_moments_tensor(drift, centre_drift, diffusion_cov, np.array([float(unit)]))
    step_transition, step_shift, step_covariance = (
        one[0][..., 0, :, :],
        one[1][..., 0, :],
        one[2][..., 0, :, :],
    )
    step_transpose = pt.swapaxes(step_transition, -1, -2)

    moments = [(step_transition, step_shift, step_covariance)]
    for _ in range(1, max(multiples)):
        transition, shift, covariance = moments[-1]
        moments.append(
            (
                step_transition @ transition,
                (step_transition @ shift[..., None])[..., 0] + step_shift,
                step_transition @ covariance @ step_transpose + step_covariance,
            )
        )
    chosen = [moments[k - 1] for k in multiples]
    return (
        pt.stack([moment[0] for moment in chosen], axis=-3),
        pt.stack([moment[1] for moment in chosen], axis=-2),
        pt.stack([moment[2] for moment in chosen], axis=-3),
    )


def step_multiples(dt: np.ndarray, limit: int = 64) -> tuple[float, tuple[int, ...]] | None:
    """Express time steps as whole multiples of the smallest one, if they are.

    Parameters
    ----------
    dt : numpy.ndarray
        Distinct positive time steps.
    limit : int, default=64
        Largest multiple worth a recursion; beyond it the direct exponentials are cheaper.

    Returns
    -------
    (unit, multiples) or None
        ``None`` when some step is not a multiple (within 1e-9, relative) of the smallest one
        or the largest multiple exceeds ``limit``.

    Examples
    --------
    >>> step_multiples(np.array([1.0, 2.0, 5.0]))
    (1.0, (1, 2, 5))
    >>> step_multiples(np.array([1.0, 1.5])) is None
    True
    """
    dt = np.asarray(dt, dtype=float)
    unit = float(dt.min())
    ratio = dt / unit
    multiples = np.rint(ratio)
    if np.any(np.abs(ratio - multiples) > 1e-9 * ratio) or multiples.max() > limit:
        return None
    return unit, tuple(int(k) for k in multiples)


def _mean_generator(drift, centre_drift, xp):
    """Build ``[[A, c], [0, 0]]``, whose exponential holds F and the shift."""
    top = xp.concatenate([drift, centre_drift[..., :, None]], axis=-1)
    return xp.concatenate([top, xp.zeros_like(top[..., :1, :])], axis=-2)


def _van_loan_generator(drift, diffusion_cov, xp):
    """Build ``[[-A, Sigma], [0, A^T]]`` (Van Loan)."""
    transpose = xp.swapaxes(drift, -1, -2)
    top = xp.concatenate([-drift, diffusion_cov], axis=-1)
    bottom = xp.concatenate([xp.zeros_like(drift), transpose], axis=-1)
    return xp.concatenate([top, bottom], axis=-2)


def _split(mean_exp, covariance_exp, n, xp):
    transition = mean_exp[..., :n, :n]
    shift = mean_exp[..., :n, n]
    block_22 = covariance_exp[..., n:, n:]
    covariance = xp.swapaxes(block_22, -1, -2) @ covariance_exp[..., :n, n:]
    covariance = 0.5 * (covariance + xp.swapaxes(covariance, -1, -2))
    return transition, shift, covariance


def regression_loglik_cov_tensor(
    coefficients: pt.TensorLike,
    covariance: pt.TensorLike,
    s_zz: pt.TensorLike,
    s_zy: pt.TensorLike,
    s_yy: pt.TensorLike,
    n_transitions: pt.TensorLike,
) -> pt.TensorVariable:
    r"""Like :func:`regression_loglik_tensor`, from the covariance instead of its Cholesky factor.

    Used by the exact model, whose covariances :math:`Q` are computed rather than sampled.
    A general (LU) solve and log-determinant avoid differentiating a batched Cholesky
    decomposition, whose gradient Numba runs in object mode: with it one gradient of the
    exact model on the 12 distinct gaps of a test set took 10 ms, without it 0.67 ms.
    (A solve declared positive definite would be rewritten into a Cholesky solve.)
    """
    coefficients, covariance, s_zz, s_zy, s_yy = map(
        pt.as_tensor, (coefficients, covariance, s_zz, s_zy, s_yy)
    )
    transposed = pt.swapaxes(coefficients, -1, -2)
    cross = transposed @ s_zy
    residual = s_yy - cross - pt.swapaxes(cross, -1, -2) + transposed @ s_zz @ coefficients

    eye = pt.eye(coefficients.shape[-1])
    trace = (pt.linalg.solve(covariance, residual) * eye).sum(axis=(-2, -1))
    sign, log_det = pt.linalg.slogdet(covariance)
    n_objectives = coefficients.shape[-1]
    loglik = -0.5 * (n_transitions * (n_objectives * np.log(2 * np.pi) + log_det) + trace)

    # A strongly unstable drift over a long step makes Q so ill-conditioned that in floating
    # point it is no longer positive definite (a negative determinant, or a negative
    # quadratic form of the residual scatter). Its log|det| would give a finite but
    # meaningless, often huge, density, so such a point is rejected instead.
    usable = (sign > 0) & (trace >= 0)
    return pt.switch(usable, loglik, -np.inf)


def regression_loglik_tensor(
    coefficients: pt.TensorLike,
    chol: pt.TensorLike,
    s_zz: pt.TensorLike,
    s_zy: pt.TensorLike,
    s_yy: pt.TensorLike,
    n_transitions: pt.TensorLike,
) -> pt.TensorVariable:
    r"""Log density of a multivariate regression :math:`y \sim N(B^\top z, LL^\top)` from sums.

    Parameters
    ----------
    coefficients : tensor, shape (..., p, n)
        :math:`B`.
    chol : tensor, shape (..., n, n)
        Lower Cholesky factor of the residual covariance.
    s_zz, s_zy, s_yy : tensor, shapes (..., p, p), (..., p, n), (..., n, n)
        :math:`\sum z z^\top`, :math:`\sum z y^\top`, :math:`\sum y y^\top`.
    n_transitions : tensor, shape (...)

    Returns
    -------
    tensor, shape (...)

    Notes
    -----
    With the residual scatter
    :math:`R = S_{yy} - B^\top S_{zy} - S_{zy}^\top B + B^\top S_{zz} B`,

    .. math::

        \log p = -\frac{Nn}{2}\log 2\pi - N \sum_i \log L_{ii}
        - \frac{1}{2}\operatorname{tr}\left(L^{-\top} L^{-1} R\right),

    and the trace takes two triangular solves. A group with :math:`N = 0` and zero sums
    contributes exactly 0.
    """
    coefficients, chol, s_zz, s_zy, s_yy, n_transitions = map(
        pt.as_tensor, (coefficients, chol, s_zz, s_zy, s_yy, n_transitions)
    )
    transposed = pt.swapaxes(coefficients, -1, -2)
    cross = transposed @ s_zy
    residual = s_yy - cross - pt.swapaxes(cross, -1, -2) + transposed @ s_zz @ coefficients

    half = pt.linalg.solve_triangular(chol, residual, lower=True)
    whitened = pt.linalg.solve_triangular(chol, pt.swapaxes(half, -1, -2), lower=True)
    # Diagonals through an identity mask: the gradient of a batched pt.diagonal is an
    # AllocDiag that Numba can only run in (slow) object mode.
    eye = pt.eye(coefficients.shape[-1])
    trace = (whitened * eye).sum(axis=(-2, -1))

    n_objectives = coefficients.shape[-1]
    log_det = pt.log((chol * eye).sum(axis=-1)).sum(axis=-1)
    return (
        -0.5 * n_transitions * n_objectives * np.log(2 * np.pi)
        - n_transitions * log_det
        - 0.5 * trace
    )


def interval_moments(
    drift: np.ndarray,
    centre_drift: np.ndarray,
    diffusion_cov: np.ndarray,
    dt: np.ndarray,
    discretization: Literal["euler", "exact"] = "euler",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Moments of the change over each time step: :math:`F - I`, the shift and :math:`Q`.

    Parameters
    ----------
    drift, centre_drift, diffusion_cov : numpy.ndarray
        As in :func:`exact_moments`.
    dt : numpy.ndarray, shape (k,)
    discretization : {"euler", "exact"}, default="euler"

    Returns
    -------
    change_matrix, shift, covariance : numpy.ndarray
        Shapes (..., k, n, n), (..., k, n), (..., k, n, n).
    """
    dt = np.asarray(dt, dtype=float)
    if discretization == "exact":
        transition, shift, covariance = exact_moments(drift, centre_drift, diffusion_cov, dt)
        return transition - np.eye(drift.shape[-1]), shift, covariance
    step = dt[:, None, None]
    return (
        drift[..., None, :, :] * step,
        centre_drift[..., None, :] * dt[:, None],
        diffusion_cov[..., None, :, :] * step,
    )


def fit_measures(
    drift: np.ndarray,
    intercept: np.ndarray,
    diffusion_cov: np.ndarray,
    statistics: xr.Dataset,
    discretization: Literal["euler", "exact"] = "euler",
) -> tuple[np.ndarray, np.ndarray]:
    r"""One-step :math:`R^2` and log-likelihood of each strategy's observed changes.

    Parameters
    ----------
    drift, intercept, diffusion_cov : numpy.ndarray
        Parameters in the objectives' own units, shapes (..., strategy, n, n), (..., strategy,
        n) and (..., strategy, n, n).
    statistics : xarray.Dataset
        Sufficient statistics of the data (:func:`sdebayes.sufficient_stats.sufficient_statistics`).
    discretization : {"euler", "exact"}, default="euler"

    Returns
    -------
    r2, loglik : numpy.ndarray, shape (..., strategy)

    Notes
    -----
    Per time step :math:`k`, the residual scatter of the changes is
    :math:`R_k = S_{yy} - B_k^\top S_{zy} - S_{zy}^\top B_k + B_k^\top S_{zz} B_k` with
    :math:`B_k = [(F_k - I)^\top; g_k^\top]` (standardised units). Then
    :math:`R^2 = 1 - \sum_k \operatorname{tr}(W R_k) / \operatorname{tr}(W T)`, with
    :math:`T` the scatter of the changes about their mean and :math:`W` the squared scales,
    so that objectives are pooled in their own units; and the log-likelihood is the sum of the
    Gaussian densities with covariance :math:`Q_k`, less the Jacobian of the
    standardisation, so it equals the sum of per-transition densities of the raw changes.
    """
    from sdebayes.dynamics import standardised_coefficients

    scale = statistics["scale"].to_numpy()
    drift_std, centre_drift = standardised_coefficients(drift, intercept, statistics)
    cov_std = diffusion_cov / (scale[:, None] * scale[None, :])
    change_matrix, shift, covariance = interval_moments(
        drift_std, centre_drift, cov_std, statistics["interval_dt"].to_numpy(), discretization
    )

    coefficients = np.concatenate(
        [np.swapaxes(change_matrix, -1, -2), shift[..., None, :]], axis=-2
    )
    s_zz, s_zy, s_yy = (
        statistics[f"interval_{name}"].to_numpy() for name in ("s_zz", "s_zy", "s_yy")
    )
    transposed = np.swapaxes(coefficients, -1, -2)
    cross = transposed @ s_zy
    residual = s_yy - cross - np.swapaxes(cross, -1, -2) + transposed @ s_zz @ coefficients

    weight = scale**2
    n = statistics["n_transitions"].to_numpy()
    total = np.diagonal(s_yy.sum(axis=1), axis1=-2, axis2=-1)
    total = total - statistics["change_sum"].to_numpy() ** 2 / n[:, None]
    explained = np.diagonal(residual, axis1=-2, axis2=-1).sum(axis=-2)
    r2 = 1.0 - (explained * weight).sum(axis=-1) / (total * weight).sum(axis=-1)

    counts = statistics["interval_n"].to_numpy()
    n_objectives = drift.shape[-1]
    log_det, trace = _gaussian_terms(covariance, residual)
    per_interval = -0.5 * (counts * (n_objectives * np.log(2 * np.pi) + log_det) + trace)
    loglik = per_interval.sum(axis=-1) - n * np.log(scale).sum()
    return r2, loglik


def _gaussian_terms(covariance: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\log\det Q` and :math:`\operatorname{tr}(Q^{-1} R)`, NaN where Q is not usable.

    A draw whose transition covariance is singular, not positive definite or not finite (an
    exploding drift over a long interval can overflow it) has no density; it gets NaN instead
    of stopping the whole computation, and a warning counts such draws.
    """
    sign, log_det = np.linalg.slogdet(covariance)
    usable = (sign > 0) & np.isfinite(log_det)
    if usable.all():
        return log_det, np.trace(np.linalg.solve(covariance, residual), axis1=-2, axis2=-1)

    identity = np.broadcast_to(np.eye(covariance.shape[-1]), covariance.shape)
    safe = np.where(usable[..., None, None], covariance, identity)
    trace = np.trace(np.linalg.solve(safe, residual), axis1=-2, axis2=-1)
    logger.warning(
        "%d of %d transition covariances are singular or not finite; their draws get a NaN "
        "log-likelihood",
        int((~usable).sum()),
        usable.size,
    )
    return np.where(usable, log_det, np.nan), np.where(usable, trace, np.nan)


def choose_discretization(
    trajectories: xr.Dataset,
    statistics: xr.Dataset,
    requested: Literal["auto", "euler", "exact"] = "auto",
) -> Literal["euler", "exact"]:
    """Resolve ``discretization="auto"``: exact for timed or uneven data, Euler otherwise.

    Parameters
    ----------
    trajectories : xarray.Dataset
    statistics : xarray.Dataset
        Sufficient statistics of ``trajectories``.
    requested : {"auto", "euler", "exact"}, default="auto"

    Returns
    -------
    {"euler", "exact"}
    """
    if requested not in ("auto", *DISCRETIZATIONS):
        raise ValueError(
            f"discretization={requested!r} is not one of auto, {', '.join(DISCRETIZATIONS)}"
        )
    if requested != "auto":
        return requested
    timed = bool(trajectories.attrs.get("has_time_column", 0))
    return "exact" if timed or not statistics.attrs.get("unit_steps", 1) else "euler"


def typical_step(statistics: xr.Dataset) -> float:
    """Return the most common time step of the data (the dt of the discrete stability)."""
    counts = statistics["interval_n"].sum("strategy").to_numpy()
    return float(statistics["interval_dt"].to_numpy()[int(np.argmax(counts))])
