"""The accept rule, in one place: answer the best label when its score >= threshold AND it beats the best
other label by >= margin (best - second >= margin). The matcher, evaluation, calibration's sweep and the
export parity check all decide with these two functions, so they count the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pocketvec.runtime.metadata import AcceptRule


def rule_parts(best: np.ndarray, gap: np.ndarray, threshold: np.ndarray | float,
               margin: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The rule's two tests, kept apart so a sweep can broadcast them over grids of thresholds and margins:
    (best >= threshold, gap >= margin), `gap` being best - best other label. A photo is answered where both
    hold."""
    return best >= threshold, gap >= margin


def accepts(best: np.ndarray, second: np.ndarray, rule: AcceptRule) -> np.ndarray:
    """The accept rule on arrays of best and best-other-label scores."""
    over, clear = rule_parts(best, best - second, rule.threshold, rule.margin)
    return over & clear
