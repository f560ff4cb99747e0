"""sdebayes: Bayesian stochastic-differential-equation models of multi-objective LLM iteration."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sdebayes")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
