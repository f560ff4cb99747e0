"""Save and open fits as NetCDF files.

A fit is an :class:`xarray.DataTree` (see :func:`sdebayes.fit.fit`). It is written with the
h5netcdf engine through a temporary file, so the destination is either the complete new file
or untouched, and opened read-only and fully loaded, so no file handle stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from sdebayes._io import atomic_path, check_output_path
from sdebayes.exceptions import PosteriorFileError

__all__ = ["REQUIRED_CONTENT", "load_posterior", "save_posterior"]

logger = logging.getLogger(__name__)


def save_posterior(tree: xr.DataTree, path: str | Path) -> Path:
    """Write a fit as NetCDF (h5netcdf engine) atomically.

    Parameters
    ----------
    tree : xarray.DataTree
    path : str or Path

    Returns
    -------
    Path
    """
    path = check_output_path(path)
    with atomic_path(path) as temporary:
        tree.to_netcdf(temporary, engine="h5netcdf")
    logger.info("wrote %s", path)
    return path


REQUIRED_CONTENT: dict[str, tuple[str, ...]] = {
    "posterior": (
        "drift",
        "intercept",
        "diffusion_cov",
        "convergence_rate",
        "equilibrium",
        "interference",
    ),
    "sample_stats": ("diverging",),
    "observed_data": ("scores", "time"),
    "constant_data": ("n_transitions",),
}
"""Variables :func:`load_posterior` requires in each group it is asked for."""

_REQUIRED_DIMS = {"posterior": ("chain", "draw", "strategy", "objective")}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HOW_TO_FIX = "pass a posterior file written by `sdebayes sample`"


def load_posterior(path: str | Path, groups: Sequence[str] = ("posterior",)) -> xr.DataTree:
    """Open a posterior written by :func:`save_posterior`, read-only, fully loaded.

    Parameters
    ----------
    path : str or Path
    groups : sequence of str, default=("posterior",)
        Groups that must be present, each with the variables listed in
        :data:`REQUIRED_CONTENT`.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    PosteriorFileError
        If the file is missing, a directory, not NetCDF-4/HDF5, or lacks a required group or
        variable (a posterior written by another tool).
    """
    path = Path(path)
    _check_posterior_file(path)
    try:
        # phony_dims: name the dimensions of plain HDF5 datasets instead of warning about them
        with xr.open_datatree(path, engine="h5netcdf", phony_dims="sort") as opened:
            tree = opened.load()
    except Exception as err:  # h5py and h5netcdf raise many types for a damaged file
        raise PosteriorFileError(
            f"{path}: not a NetCDF posterior, or a damaged one ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:120]}); {_HOW_TO_FIX}"
        ) from err

    missing = [group for group in groups if group not in tree.children]
    if missing:
        raise PosteriorFileError(
            f"{path}: lacks group(s) {', '.join(missing)}; it has "
            f"{', '.join(tree.children) or 'no groups'}; {_HOW_TO_FIX}"
        )
    for group in groups:
        _check_group(path, group, tree[group].to_dataset())
    return tree


def _check_posterior_file(path: Path) -> None:
    if not path.exists():
        raise PosteriorFileError(f"{path}: no such file; {_HOW_TO_FIX}")
    if path.is_dir():
        kind = "a Zarr store" if path.suffix.lower() == ".zarr" else "a directory"
        raise PosteriorFileError(f"{path}: is {kind}, not a NetCDF file; {_HOW_TO_FIX}")
    try:
        with path.open("rb") as handle:
            start = handle.read(8)
    except OSError as err:
        raise PosteriorFileError(
            f"{path}: cannot be read ({err.strerror or err}); check its permissions"
        ) from err
    if start.startswith((b"CDF\x01", b"CDF\x02")):
        what = "a NetCDF-3 file; sdebayes writes NetCDF-4"
    elif not start:
        what = "the file is empty"
    elif not start.startswith(_HDF5_SIGNATURE):
        what = "not a NetCDF-4/HDF5 file"
    else:
        return
    raise PosteriorFileError(f"{path}: not a NetCDF posterior ({what}); {_HOW_TO_FIX}")


def _check_group(path: Path, group: str, dataset: xr.Dataset) -> None:
    absent = [name for name in REQUIRED_CONTENT.get(group, ()) if name not in dataset]
    absent += [
        f"dimension {dim}" for dim in _REQUIRED_DIMS.get(group, ()) if dim not in dataset.dims
    ]
    if absent:
        present = ", ".join(map(str, list(dataset.data_vars)[:8])) or "nothing"
        raise PosteriorFileError(
            f"{path}: group {group} lacks {', '.join(absent)} (it has {present}); it was not "
            f"written by sdebayes sample, or by an older version; {_HOW_TO_FIX}"
        )
