"""Moving medians for long loss curves: O(n log w) time, O(n) memory, exact.

:func:`diagnose` smooths every curve with running medians.  Taking the median of each window
of a strided ``(n, w)`` view copies ``n * w`` numbers, which at a few hundred thousand logged
points no longer fits in memory.  These functions use ``bottleneck.move_median`` (a
double-heap running median in C, a core dependency of losskit) instead, and return exactly
the numbers the window-by-window medians give, the mean of the two middle values of an
even-sized window included.
"""

from __future__ import annotations

import bottleneck as bn
import numpy as np

__all__ = ["centred_median", "trailing_median"]


def centred_median(y: np.ndarray, window: int) -> np.ndarray:
    """The running median of ``y`` over a centred window of ``window`` points (made odd).

    Near the ends the window holds the points there are: at index ``i`` it is
    ``y[max(0, i - h) : i + h + 1]`` with ``h = window // 2``, capped at ``(n - 1) // 2`` for a
    series shorter than the window.  NaN values are left out of the median, as
    ``np.nanmedian`` leaves them out.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    window = max(1, int(window)) | 1
    if window == 1 or y.size < 3:
        return y.copy()
    h = min(window // 2, (y.size - 1) // 2)
    # a trailing window of 2h + 1 ending at i + h is the centred window at i; NaN padding at the
    # end shrinks it there, and min_count=1 lets it shrink at the start
    padded = np.empty(y.size + h)
    padded[: y.size] = y
    padded[y.size :] = np.nan
    return bn.move_median(padded, 2 * h + 1, min_count=1)[h:]


def trailing_median(y: np.ndarray, m: int) -> np.ndarray:
    """``out[t] = median(y[t : t + m])`` for ``t = 0 .. n - m``: ``np.median`` of each window
    of a sliding window view, without the copy (a window holding a NaN gives NaN)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    m = int(m)
    if not 1 <= m <= y.size:
        raise ValueError(f"window {m} does not fit in {y.size} points")
    return bn.move_median(y, m)[m - 1 :]
