"""A training time budget: `pocketvec train --preset enroll --budget 30m` fits the number of steps to the time.

The run times its start (loading, the held-out photos, the first evaluation) and its first steps, then
fits the steps so that training, the evaluations still due and the one at the end fit the budget, and fits
them again after every evaluation with the times measured so far:

    steps = (budget - elapsed - (evaluations + FINISH_EVALUATIONS) x one evaluation) / one step

The schedule (warmup + cosine) and the evaluation points follow the fitted steps; a run that still runs
over stops at the budget and is judged on the weights it reached.
"""

from __future__ import annotations

import math
import re

from pocketvec.errors import ConfigError

PROBE_STEPS = 4  # steps timed (after the first, which starts the data workers) before the steps are fitted
FINISH_EVALUATIONS = 3  # at the end: the photos' crops chosen again (two crops' photos), the float weights
UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_BUDGET_S = 7 * 24 * 3600.0
SECONDS_PER_EVALUATION = 300.0  # a 5-minute budget is evaluated once at its end, 15 minutes and more 3 times
MAX_BUDGET_EVALUATIONS = 3


def parse_budget(text: str) -> float:
    """'30m', '90s', '1.5h', '45min' or a plain number of minutes -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", str(text).lower())
    if not match:
        raise ConfigError(f"budget must be a duration like 30m, 90s or 1.5h. Got {text!r}.")
    seconds = float(match.group(1)) * UNITS[match.group(2) or "m"]
    if not 0 < seconds <= MAX_BUDGET_S:
        raise ConfigError(f"budget must be more than 0 and at most 7 days. Got {text!r}.")
    return seconds


def fit_steps(budget_s: float, elapsed_s: float, step_s: float, evaluation_s: float, evaluations: int) -> int:
    """The training steps that fit what is left of `budget_s` after `elapsed_s`, with `evaluations` held-out
    evaluations during training and FINISH_EVALUATIONS at the end (each `evaluation_s`); at least 1."""
    left = budget_s - elapsed_s - (evaluations + FINISH_EVALUATIONS) * evaluation_s
    return max(1, math.floor(left / max(step_s, 1e-6)))


def budget_evaluations(budget_s: float) -> int:
    """Held-out evaluations along a budget run (besides the start): one per SECONDS_PER_EVALUATION of budget,
    1 to MAX_BUDGET_EVALUATIONS; on a small CPU one evaluation of a few hundred items takes about a minute."""
    return int(min(MAX_BUDGET_EVALUATIONS, max(1, budget_s // SECONDS_PER_EVALUATION)))


def evaluation_interval(total_steps: int, evaluations: int) -> int:
    """Steps between held-out evaluations: `evaluations` evenly spaced, the last at the end."""
    return max(1, math.ceil(total_steps / max(1, evaluations)))
