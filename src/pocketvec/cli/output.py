"""How much the CLI says: --quiet (results and errors only), normal, --verbose (third-party
messages too). In a normal run the libraries pocketvec calls stay silent: coremltools' version and
"Failed to load" notices, converter progress bars (tqdm) and library warnings are not the user's
business; --verbose shows them all."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pocketvec.safe_text import SafeConsole, printable, safe

__all__ = ["LOG_COLUMNS", "Settings", "configure", "console", "err_console", "printable", "safe", "settings",
           "widen_when_logged"]

NOISY_LOGGERS = ("coremltools", "onnxruntime", "onnxscript", "timm", "peft", "torch", "PIL")


@dataclass
class Settings:
    quiet: bool = False
    verbose: bool = False

    @property
    def progress(self) -> bool:
        """Progress bars (on stderr, erased when done) unless quiet."""
        return not self.quiet


settings = Settings()
# every message and table goes through these; values inside markup go through safe() (pocketvec.safe_text)
console = SafeConsole(soft_wrap=True)  # long paths stay whole; tables size themselves (LOG_COLUMNS in a log)
err_console = SafeConsole(stderr=True, soft_wrap=True)  # errors, warnings, notes: stdout stays the results
LOG_COLUMNS = "200"


@contextmanager
def widen_when_logged() -> Iterator[None]:
    """With no terminal at all (a log file, CI, a pipe from a script) rich lays tables out in 80 columns,
    folding every cell of `data list` and `verify`; give it LOG_COLUMNS instead, for this command only. A
    terminal's own width, or COLUMNS set by the user, is left alone."""
    if "COLUMNS" in os.environ or any(_is_terminal(fd) for fd in (0, 1, 2)):
        yield
        return
    os.environ["COLUMNS"] = LOG_COLUMNS
    try:
        yield
    finally:
        os.environ.pop("COLUMNS", None)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def configure(quiet: bool = False, verbose: bool = False) -> None:
    """Set the level for this process; call before the libraries are imported."""
    settings.quiet, settings.verbose = quiet, verbose
    console.quiet = quiet  # errors and warnings still print
    if verbose:
        return
    os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm >= 4.66 reads it for every bar's default
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("coremltools", "onnxscript", "torch", "timm", "peft", "albumentations"):
        warnings.filterwarnings("ignore", module=rf"{module}(\..*)?$")
    warnings.filterwarnings("ignore", message=r".*has not been tested with coremltools.*")
