"""Expected failures as one ``Error: ...`` line instead of a traceback."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import click

# `go2bench --debug` (or GO2BENCH_TRACEBACK=1) shows the traceback instead.
TRACEBACK_VARIABLE = "GO2BENCH_TRACEBACK"


@contextlib.contextmanager
def one_line_errors(prefix: str = "") -> Iterator[None]:
    """Bad values, missing files, a backend this machine lacks, a failed stage: one line, exit status 1."""
    try:
        yield
    except click.ClickException:
        raise
    except (ValueError, OSError, RuntimeError, ImportError, MemoryError, RecursionError) as e:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        raise click.ClickException(prefix + " ".join(str(e).split())) from None
