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

__all__ = ["load_posterior", "save_posterior"]

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


def load_posterior(path: str | Path, groups: Sequence[str] = ("posterior",)) -> xr.DataTree:
    """Open a posterior written by :func:`save_posterior`, read-only, fully loaded.

    Parameters
    ----------
    path : str or Path
    groups : sequence of str, default=("posterior",)
        Groups that must be present.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    PosteriorFileError
        If the file is missing, not NetCDF/HDF5, or lacks a required group.
    """
    path = Path(path)
    if not path.is_file():
        raise PosteriorFileError(
            f"{path}: no such file; pass a posterior written by sdebayes sample"
        )
    try:
        with xr.open_datatree(path, engine="h5netcdf") as opened:
            tree = opened.load()
    except (OSError, ValueError) as err:
        raise PosteriorFileError(
            f"{path}: not a NetCDF posterior ({type(err).__name__}); pass a file written by "
            "sdebayes sample"
        ) from err

    missing = [group for group in groups if group not in tree.children]
    if missing:
        raise PosteriorFileError(
            f"{path}: lacks group(s) {', '.join(missing)}; it has "
            f"{', '.join(tree.children) or 'no groups'}. Pass a file written by sdebayes sample"
        )
    return tree
