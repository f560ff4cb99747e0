"""Errors and warnings raised by sdebayes.

Every failure caused by the user's input (a malformed table, an unknown strategy, an invalid
model file) raises a subclass of :class:`SdebayesError`. The command line turns these into a
one-line message and exit code 2; library users can catch the base class.

Data that can be used but deserve a second look (a strategy left out of a fit, an objective
that never changes) are reported with :class:`DataWarning`. Statistical diagnostics (R-hat,
effective sample size, divergences) are reported with :class:`DiagnosticWarning` and its
subclasses, never as errors, because a poorly converged fit is still worth looking at.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DiagnosticWarning",
    "OutputError",
    "PosteriorFileError",
    "SamplerError",
    "SamplingWarning",
    "SdebayesError",
    "SpecError",
]


class SdebayesError(ValueError):
    """Base class of every error caused by input that sdebayes cannot use."""


class DataError(SdebayesError):
    """A trajectory table or trace file is malformed or unsuitable for fitting."""


class SpecError(SdebayesError):
    """A model specification (TOML) has unknown keys or invalid priors."""


class PosteriorFileError(SdebayesError):
    """A posterior file is missing, not NetCDF, or lacks the groups sdebayes writes."""


class SamplerError(SdebayesError):
    """The requested sampler or backend is not installed or cannot fit this model."""


class OutputError(SdebayesError):
    """An output path cannot be written (missing directory, no permission, a directory)."""


class DataWarning(UserWarning):
    """The data can be fitted, but part of it is left out or carries no information."""


class DiagnosticWarning(UserWarning):
    """A sampling diagnostic crossed its threshold; the message says which and what to do."""


class ConvergenceWarning(DiagnosticWarning):
    """Chains disagree (R-hat) or carry too little information (effective sample size)."""


class SamplingWarning(DiagnosticWarning):
    """The sampler reported divergent transitions or other numerical trouble."""
