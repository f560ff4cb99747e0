"""Model specifications: the priors and pooling of a model, read from TOML.

A specification is a small TOML file (see ``models/`` in the repository). Three ship with
sdebayes: ``hierarchical`` (the default, partial pooling of drift matrices across
strategies), ``pooled`` (one drift matrix for all strategies) and ``unpooled`` (independent
strategies). Any other file with the same keys can be passed by path.

Every key is checked: an unknown key or an invalid prior raises :class:`SpecError` listing
what is allowed, so that a typo never silently falls back to a default.
"""

from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sdebayes.exceptions import SpecError

__all__ = ["MODEL_NAMES", "ModelSpec", "load_spec", "model_path"]

logger = logging.getLogger(__name__)

_MODELS_DIR = Path(__file__).resolve().parent / "_models"

MODEL_NAMES = ("hierarchical", "pooled", "unpooled")
"""Names of the specifications bundled with sdebayes."""

Pooling = Literal["partial", "complete", "none"]
Parameterization = Literal["centred", "noncentred"]


@dataclass(frozen=True)
class DriftPrior:
    """Normal prior of the (population) drift matrix, in standardised units per unit time."""

    diagonal_mu: float = -0.6
    diagonal_sigma: float = 0.35
    off_diagonal_sigma: float = 0.15


@dataclass(frozen=True)
class SpreadPrior:
    """HalfNormal priors of the spread of strategy drift matrices around the population.

    One spread for the diagonal entries (how fast each objective settles differs a lot
    between strategies) and one for the off-diagonal couplings.
    """

    diagonal_sigma: float = 0.25
    off_diagonal_sigma: float = 0.1


@dataclass(frozen=True)
class CentreDriftPrior:
    """Normal(0, sigma) prior of the expected change at each strategy's mean state."""

    sigma: float = 0.3


@dataclass(frozen=True)
class DiffusionPrior:
    """Priors of the diffusion: HalfNormal standard deviations, LKJ correlations, a floor."""

    sd_sigma: float = 0.5
    eta: float = 2.0
    floor: float = 0.01


@dataclass(frozen=True)
class DynamicsSettings:
    """Thresholds of the dynamic-mode classification (see :mod:`sdebayes.dynamics`)."""

    boundary_tolerance: float = 0.02
    oscillation_tolerance: float = 0.05


@dataclass(frozen=True)
class ModelSpec:
    r"""A complete model specification.

    Parameters
    ----------
    name : str
        Short name shown in summaries.
    pooling : {"partial", "complete", "none"}
        How drift matrices are shared across strategies.
    parameterization : {"centred", "noncentred"}
        How partially pooled drift matrices are sampled: ``centred`` draws
        :math:`A_s \sim \mathcal{N}(A_{pop}, \tau)` directly, ``noncentred`` draws
        :math:`Z_s \sim \mathcal{N}(0, 1)` and sets :math:`A_s = A_{pop} + \tau Z_s`. Centred
        is faster when every strategy has many transitions (the usual case), non-centred when
        strategies have few. Ignored unless ``pooling = "partial"``.
    description : str
        One sentence for humans.
    drift, drift_spread, centre_drift, diffusion : prior dataclasses
        Prior hyperparameters on the standardised scale.
    dynamics : DynamicsSettings
        Thresholds used when classifying each posterior draw's dynamics.
    source : str
        The TOML text the specification was read from, stored with every posterior so that a
        fit can be reproduced.
    """

    name: str = "hierarchical"
    pooling: Pooling = "partial"
    parameterization: Parameterization = "centred"
    description: str = ""
    drift: DriftPrior = field(default_factory=DriftPrior)
    drift_spread: SpreadPrior = field(default_factory=SpreadPrior)
    centre_drift: CentreDriftPrior = field(default_factory=CentreDriftPrior)
    diffusion: DiffusionPrior = field(default_factory=DiffusionPrior)
    dynamics: DynamicsSettings = field(default_factory=DynamicsSettings)
    source: str = field(default="", repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the specification as plain nested dictionaries (without ``source``)."""
        values = asdict(self)
        values.pop("source")
        return values


_PRIOR_SECTIONS: dict[str, type] = {
    "drift": DriftPrior,
    "drift_spread": SpreadPrior,
    "centre_drift": CentreDriftPrior,
    "diffusion": DiffusionPrior,
}
_POSITIVE = {"diagonal_sigma", "off_diagonal_sigma", "sigma", "sd_sigma", "eta"}
_NON_NEGATIVE = {"floor", "boundary_tolerance", "oscillation_tolerance"}


def model_path(name: str) -> Path:
    """Return the path of a bundled specification.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.

    Returns
    -------
    Path
    """
    if name not in MODEL_NAMES:
        raise SpecError(f"unknown model {name!r}; bundled models: {', '.join(MODEL_NAMES)}")
    return _MODELS_DIR / f"{name}.toml"


def load_spec(model: str | Path | None = None) -> ModelSpec:
    """Read a model specification.

    Parameters
    ----------
    model : str or Path, optional
        A bundled model name (``"hierarchical"``, ``"pooled"``, ``"unpooled"``) or the path of
        a TOML file. Default: ``"hierarchical"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    SpecError
        If the file is missing, is not valid TOML, has unknown keys or invalid values.

    Examples
    --------
    >>> spec = load_spec("pooled")
    >>> spec.pooling
    'complete'
    """
    if model is None or str(model) in MODEL_NAMES:
        path = model_path(str(model or "hierarchical"))
    else:
        path = Path(model)
    choices = f"pass a TOML path or one of {', '.join(MODEL_NAMES)}"
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a model file; {choices}")
    if not path.is_file():
        raise SpecError(f"{path}: no such model file; {choices}")

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise SpecError(
            f"{path}: cannot be read ({err.strerror or err}); check its permissions"
        ) from err
    except UnicodeDecodeError as err:
        raise SpecError(
            f"{path}: not UTF-8 text (byte {err.start} cannot be decoded), so not TOML; save "
            "it as UTF-8"
        ) from err
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(
            f"{path}: not valid TOML ({err}); fix that line (models/hierarchical.toml in the "
            "repository shows the layout)"
        ) from err

    spec = spec_from_dict(document, where=str(path))
    logger.debug("loaded model %s from %s", spec.name, path)
    return ModelSpec(**{**spec.__dict__, "source": text})


def spec_from_dict(document: dict[str, Any], where: str = "<spec>") -> ModelSpec:
    """Build a :class:`ModelSpec` from a parsed TOML document, checking every key.

    Parameters
    ----------
    document : dict
        With the tables ``[model]``, ``[priors.*]`` and ``[dynamics]``.
    where : str, default="<spec>"
        Name used in error messages.

    Returns
    -------
    ModelSpec
    """
    _check_keys(document, {"model", "priors", "dynamics"}, where, "top level")
    header = document.get("model", {})
    _check_keys(header, {"name", "pooling", "parameterization", "description"}, where, "[model]")

    for key in ("name", "description"):
        if key in header and not isinstance(header[key], str):
            raise SpecError(
                f"{where}: [model] {key} = {header[key]!r} must be a string; write it in "
                f'quotes, e.g. {key} = "{header[key]}"'
            )

    pooling = header.get("pooling", "partial")
    if pooling not in ("partial", "complete", "none"):
        raise SpecError(
            f"{where}: [model] pooling = {pooling!r} is invalid; use 'partial', 'complete' "
            "or 'none'"
        )

    parameterization = header.get("parameterization", "centred")
    if parameterization not in ("centred", "noncentred"):
        raise SpecError(
            f"{where}: [model] parameterization = {parameterization!r} is invalid; use "
            "'centred' or 'noncentred'"
        )

    priors = document.get("priors", {})
    _check_keys(priors, set(_PRIOR_SECTIONS), where, "[priors]")
    sections = {
        key: _section(priors.get(key, {}), cls, where, f"[priors.{key}]")
        for key, cls in _PRIOR_SECTIONS.items()
    }
    if pooling != "partial" and "drift_spread" in priors:
        raise SpecError(
            f"{where}: [priors.drift_spread] only applies to pooling = 'partial'; remove it"
        )

    dynamics = _section(document.get("dynamics", {}), DynamicsSettings, where, "[dynamics]")
    return ModelSpec(
        name=str(header.get("name", Path(where).stem)),
        pooling=pooling,
        parameterization=parameterization,
        description=str(header.get("description", "")),
        dynamics=dynamics,
        **sections,
    )


def _check_keys(table: Any, allowed: set[str], where: str, section: str) -> None:
    if not isinstance(table, dict):
        raise SpecError(
            f"{where}: {section} must be a table, got {table!r}; write it as a {section} "
            "section with key = value lines"
        )
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in {section}; "
            f"valid keys: {', '.join(sorted(allowed))}"
        )


def _section(table: Any, cls: type, where: str, section: str) -> Any:
    defaults = cls()
    _check_keys(table, set(defaults.__dict__), where, section)

    values = {}
    for key, value in table.items():
        example = f"e.g. {key} = {getattr(defaults, key)!r} (the default)"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise SpecError(
                f"{where}: {section} {key} = {value!r} must be a finite number; write {example}"
            )
        if key in _POSITIVE and value <= 0:
            raise SpecError(
                f"{where}: {section} {key} = {value!r} must be positive; write {example}"
            )
        if key in _NON_NEGATIVE and value < 0:
            raise SpecError(
                f"{where}: {section} {key} = {value!r} must not be negative; write {example}"
            )
        values[key] = float(value)
    return cls(**values)
