"""``sdebayes score``: turn a trace of program versions into a trajectory table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from sdebayes.cli._app import app, progress_enabled

__all__ = ["score"]

logger = logging.getLogger(__name__)


@app.command()
def score(
    traces: Annotated[
        Path,
        typer.Argument(
            help=(
                "JSON Lines trace file: one program version per line with the fields session, "
                "strategy, step and code (other fields are kept as metadata)."
            ),
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="CSV file for the trajectory table (session, strategy, step, scores, parse_ok).",
        ),
    ],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            min=1,
            help="Worker processes; 1 scores in this process. Default: the number of CPUs.",
            show_default=False,
        ),
    ] = None,
    details: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Also write the findings of every version as JSON Lines (bandit test ids with "
                "severity and confidence, complexity, loop nesting, costly patterns)."
            ),
            show_default=False,
        ),
    ] = None,
    time_limit: Annotated[
        float,
        typer.Option(
            min=0.001, help="Seconds one program may take; then its fallback scores are used."
        ),
    ] = 10.0,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (only on a terminal, never under CI).")
    ] = True,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help=(
                "Score on the workers of this Dask scheduler (e.g. tcp://host:8786) instead of "
                "local processes; --workers then sets the chunks in flight (default: the "
                "cluster's threads). The time limit is not enforced in dask's worker threads."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score every program version of a trace on security, efficiency and functionality.

    Each score lies in [0, 10], higher is better; the formulas are in docs/scoring.md. The code
    is only parsed (ast, bandit, radon), never run. A version that does not parse gets
    parse_ok = false and the documented fallback scores. The table, one row per version, is
    what `sdebayes sample` reads.
    """
    from sdebayes._io import atomic_path, check_output_path
    from sdebayes.exceptions import OutputError
    from sdebayes.scoring import default_workers, read_traces, score_versions

    output = check_output_path(output, reads=(traces,))
    if details is not None:
        details = check_output_path(details, option="--details")
        if details.resolve() == output.resolve():
            raise OutputError(
                f"--details {details}: must differ from --output; choose another path"
            )

    versions = read_traces(traces)
    if dask_scheduler is None:
        batch = score_versions(
            versions,
            workers=workers or default_workers(),
            time_limit=time_limit,
            progressbar=progress_enabled(progress),
        )
    else:
        from sdebayes.distributed import connect

        with connect(dask_scheduler) as client:
            batch = score_versions(
                versions,
                workers=workers or max(1, sum(client.nthreads().values())),
                executor=client.get_executor(),
                time_limit=time_limit,
                progressbar=progress_enabled(progress),
            )

    with atomic_path(output) as temporary:
        batch.table().to_csv(temporary, index=False)
    if details is not None:
        with atomic_path(details) as temporary, temporary.open("w", encoding="utf-8") as handle:
            for record in batch.details():
                handle.write(json.dumps(record, allow_nan=False) + "\n")

    workers_used = f"{batch.workers} worker(s)" if batch.workers else "an external executor"
    typer.echo(f"{batch.summary()} with {workers_used}; wrote {output}", err=True)
