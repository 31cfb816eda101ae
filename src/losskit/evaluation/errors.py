"""The error of out-of-core evaluation, and the check that Dask is installed."""

from __future__ import annotations

__all__ = ["EvaluationError", "require_dask"]


class EvaluationError(ValueError):
    """Bad input to :func:`losskit.evaluate` (missing file, unknown column, mismatched lengths,
    NaN rows, ...); the message says what was expected and what came, in one line."""


def require_dask() -> None:
    try:
        import dask  # noqa: F401
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the dask extra is part of dev
        raise EvaluationError(
            f"evaluating files needs Dask ({exc}); install it with: pip install 'losskit[dask]'"
        ) from None
