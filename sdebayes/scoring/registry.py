"""The registry of objectives: which scorers ``sdebayes score`` runs, in which column order.

Three objectives are built in: ``security``, ``efficiency`` and ``functionality``. A user adds
an objective or replaces one in either of two ways.

* In Python, with :func:`register_scorer` (a function or a decorator)::

      from sdebayes.scoring import ObjectiveScore, register_scorer

      @register_scorer("readability", fallback=5.0)
      def score_readability(program):
          lines = program.code.splitlines() or [""]
          too_long = sum(len(line) > 100 for line in lines)
          return 10.0 * (1 - too_long / len(lines))

  Pass ``replace=True`` to replace an objective that exists, e.g. ``"security"``.

* From an installed package, with an entry point in the group ``sdebayes.scorers`` whose name
  is the objective and whose object is a scorer function or a :class:`Scorer`::

      [project.entry-points."sdebayes.scorers"]
      readability = "mypackage.scores:score_readability"

  Entry points are loaded the first time the registry is used. One named like a built-in
  objective replaces it.

A scorer receives a :class:`~sdebayes.scoring.program.Program` (with ``tree`` set to ``None``
when the version does not parse) and returns a float in [0, 10] or an
:class:`~sdebayes.scoring.program.ObjectiveScore`. It must only read the code, never run it.
To run in worker processes it must be importable: a module-level function, not a lambda.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import overload

from sdebayes.exceptions import SdebayesError
from sdebayes.scoring.program import ObjectiveScore, Program

__all__ = [
    "ENTRY_POINT_GROUP",
    "Scorer",
    "ScorerError",
    "available_scorers",
    "get_scorer",
    "register_scorer",
    "unregister_scorer",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sdebayes.scorers"
"""Entry point group through which installed packages provide scorers."""

DEFAULT_FALLBACK = 5.0
"""Score used when a scorer fails or the time limit stops it, unless it declares another."""

_RESERVED = frozenset({"session", "strategy", "step", "time", "parse_ok"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ScorerFunction = Callable[[Program], "ObjectiveScore | float"]


class ScorerError(SdebayesError):
    """A scorer cannot be loaded or used (a broken entry point, an unknown objective)."""


@dataclass(frozen=True)
class Scorer:
    """One objective: its name, the function computing it and its fallback score.

    Parameters
    ----------
    name : str
        Column name of the objective in the trajectory table.
    function : callable
        ``function(program) -> float | ObjectiveScore`` with the score in [0, 10].
    fallback : float, default=5.0
        Score recorded when the function raises or the per-program time limit stops it.
    description : str, default=""
        One line shown in listings.
    """

    name: str
    function: ScorerFunction
    fallback: float = DEFAULT_FALLBACK
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not callable(self.function):
            raise TypeError(f"scorer {self.name!r}: function must be callable")
        if not (isinstance(self.fallback, int | float) and 0 <= self.fallback <= 10):
            raise ValueError(
                f"scorer {self.name!r}: fallback={self.fallback!r} must lie in [0, 10]"
            )

    def __call__(self, program: Program) -> ObjectiveScore:
        """Score ``program`` and check the result lies in [0, 10].

        Raises
        ------
        ValueError
            If the function returns something other than a finite number in [0, 10].
        """
        result = self.function(program)
        if not isinstance(result, ObjectiveScore):
            result = ObjectiveScore(result)
        value = result.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"returned {type(value).__name__}, expected a float in [0, 10]")
        if not (math.isfinite(value) and 0 <= value <= 10):
            raise ValueError(f"returned {value!r}, outside [0, 10]")
        return ObjectiveScore(float(value), result.details)


_registry: dict[str, Scorer] = {}
_loaded = False


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise ValueError(
            f"objective name {name!r} must be an identifier (letters, digits, _) other than "
            f"{', '.join(sorted(_RESERVED))}"
        )


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    from sdebayes.scoring.efficiency import UNPARSED_SCORE as EFFICIENCY_UNPARSED
    from sdebayes.scoring.efficiency import score_efficiency
    from sdebayes.scoring.functionality import UNPARSED_SCORE as FUNCTIONALITY_UNPARSED
    from sdebayes.scoring.functionality import score_functionality
    from sdebayes.scoring.security import UNPARSED_SCORE as SECURITY_UNPARSED
    from sdebayes.scoring.security import score_security

    builtins = [
        Scorer("security", score_security, SECURITY_UNPARSED, "bandit findings and defences"),
        Scorer("efficiency", score_efficiency, EFFICIENCY_UNPARSED, "complexity, loops, patterns"),
        Scorer("functionality", score_functionality, FUNCTIONALITY_UNPARSED, "structural richness"),
    ]
    for scorer in builtins:
        _registry.setdefault(scorer.name, scorer)
    _loaded = True  # before the entry points, so that a plugin may call register_scorer
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda entry: entry.name):
        _registry[entry.name] = _load_entry_point(entry)
        logger.debug("loaded scorer %r from entry point %s", entry.name, entry.value)


def _load_entry_point(entry: object) -> Scorer:
    name = getattr(entry, "name", "?")
    value = getattr(entry, "value", "?")
    try:
        target = entry.load()  # type: ignore[attr-defined]
    except Exception as err:
        raise ScorerError(
            f"entry point {name!r} = {value!r} in group {ENTRY_POINT_GROUP!r} cannot be loaded "
            f"({type(err).__name__}: {err}); fix or uninstall the package that provides it"
        ) from err
    try:
        if isinstance(target, Scorer):
            return Scorer(name, target.function, target.fallback, target.description)
        return Scorer(name, target)
    except (TypeError, ValueError) as err:
        raise ScorerError(
            f"entry point {name!r} = {value!r} in group {ENTRY_POINT_GROUP!r}: {err}; it must "
            "name a scorer function or an sdebayes.scoring.Scorer"
        ) from err


@overload
def register_scorer(
    name: str,
    function: None = None,
    *,
    fallback: float = DEFAULT_FALLBACK,
    replace: bool = False,
    description: str = "",
) -> Callable[[ScorerFunction], ScorerFunction]: ...


@overload
def register_scorer(
    name: str,
    function: ScorerFunction,
    *,
    fallback: float = DEFAULT_FALLBACK,
    replace: bool = False,
    description: str = "",
) -> ScorerFunction: ...


def register_scorer(
    name: str,
    function: ScorerFunction | None = None,
    *,
    fallback: float = DEFAULT_FALLBACK,
    replace: bool = False,
    description: str = "",
) -> ScorerFunction | Callable[[ScorerFunction], ScorerFunction]:
    """Add an objective, or replace one, for every later batch.

    Parameters
    ----------
    name : str
        Objective (column) name: an identifier other than session, strategy, step, time and
        parse_ok.
    function : callable, optional
        ``function(program) -> float | ObjectiveScore``. Omit it to use ``register_scorer`` as
        a decorator.
    fallback : float, default=5.0
        Score recorded when the function raises or the time limit stops it.
    replace : bool, default=False
        Allow replacing an objective that is already registered.
    description : str, default=""
        One line describing the objective.

    Returns
    -------
    callable
        ``function`` unchanged, or a decorator that registers and returns its argument.

    Raises
    ------
    ValueError
        If the name is invalid, already registered without ``replace=True``, or the fallback
        lies outside [0, 10].

    Examples
    --------
    >>> @register_scorer("length", fallback=0.0)
    ... def score_length(program):
    ...     return min(10.0, len(program.code) / 100)
    >>> "length" in available_scorers()
    True
    >>> unregister_scorer("length")
    """

    def decorate(target: ScorerFunction) -> ScorerFunction:
        _ensure_loaded()
        scorer = Scorer(name, target, fallback, description)
        if name in _registry and not replace:
            raise ValueError(
                f"objective {name!r} is already registered; pass replace=True to replace it"
            )
        _registry[name] = scorer
        logger.debug("registered scorer %r", name)
        return target

    _check_name(name)
    if function is None:
        return decorate
    return decorate(function)


def unregister_scorer(name: str) -> None:
    """Remove an objective from the registry (built-in ones too).

    Raises
    ------
    ScorerError
        If no objective of that name is registered.
    """
    _ensure_loaded()
    if name not in _registry:
        raise ScorerError(f"no objective {name!r}; registered: {', '.join(_registry) or 'none'}")
    del _registry[name]


def get_scorer(name: str) -> Scorer:
    """Return the registered scorer of an objective.

    Raises
    ------
    ScorerError
        If no objective of that name is registered; the message lists those that are.
    """
    _ensure_loaded()
    try:
        return _registry[name]
    except KeyError:
        raise ScorerError(
            f"no objective {name!r}; registered: {', '.join(_registry) or 'none'}"
        ) from None


def available_scorers() -> tuple[str, ...]:
    """Names of the registered objectives, in column order.

    Examples
    --------
    >>> available_scorers()[:3]
    ('security', 'efficiency', 'functionality')
    """
    _ensure_loaded()
    return tuple(_registry)
