"""Command line interface (placeholder until the commands land)."""


def main() -> None:
    """Run the sdebayes command line."""
