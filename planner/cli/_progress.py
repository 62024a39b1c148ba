"""A study's progress line on stderr: a rich bar when stderr is a terminal, nothing otherwise (pipes, files, tests)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from planner.cli._common import is_tty

ProgressFn = Callable[[int, int], None]


@contextlib.contextmanager
def study_progress(label: str = "points") -> Iterator[ProgressFn | None]:
    """``progress(done, total)`` for :func:`planner.api.executor.execute`, or None when stderr is not a terminal
    (or ``TERM=dumb``). The bar appears at the first call and is removed when the block ends, however it ends (an
    error or Ctrl-C prints its message on a clean line)."""
    if not is_tty(sys.stderr) or os.environ.get("TERM") == "dumb":
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True, highlight=False, emoji=False, no_color=bool(os.environ.get("NO_COLOR")))
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=total, completed=done))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()
