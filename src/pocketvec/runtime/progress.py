"""One rich progress bar helper for long runtime work (embedding, gallery builds)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pocketvec.safe_text import SafeConsole, printable


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; shows nothing when disabled or when there is little to do."""
    if not enabled or total <= 1:
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    console = SafeConsole(stderr=True)  # stdout: results only
    # not on a terminal (a log, a pipe) a bar cannot redraw: rich would only leave a blank line behind
    with Progress(*columns, transient=True, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(printable(description), total=total)  # a file name is text, not markup
        yield lambda n: progress.advance(task, n)
