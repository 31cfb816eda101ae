"""The loss of the best constant guess: what a model scores before it has learned anything.

A freshly initialised network whose last layer is small predicts (almost) the same thing for
every input, so its first loss should be close to the loss of the *best constant prediction*.
That number is the yardstick for a starting loss (far above it: over-confident initialisation)
and for a final one (barely below it: the model learned little).

============================  ====================================  ==========================
loss                          best constant guess                   baseline
============================  ====================================  ==========================
cross_entropy, nll            the class frequencies :math:`\\pi`     :math:`H(\\pi)`; ln K if
                                                                    uniform (ln 27 = 3.2958)
cross_entropy, soft targets   the mean target distribution          mean CE against it
binary_cross_entropy(_with    the positive rate :math:`\\bar y`      :math:`H_b(\\bar y)`; ln 2
_logits)                      (per label for (N, L) targets)        when balanced
kl_div                        the mean target distribution          mean KL to it; ln K for
                                                                    balanced one-hot targets
mse                           the mean of the targets               their variance
mae                           the median of the targets             mean absolute deviation
other regression losses       the constant minimising the loss      found numerically
============================  ====================================  ==========================

Log-losses are in nats (natural log), like every framework computes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Baseline", "baseline_loss", "baseline_report", "resolve_loss_name", "task_baseline"]

# spellings people use for the same loss -> the catalog name
ALIASES = {
    "ce": "cross_entropy",
    "crossentropy": "cross_entropy",
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "softmax_cross_entropy": "cross_entropy",
    "softmax_cross_entropy_with_integer_labels": "cross_entropy",
    "nll_loss": "nll",
    "negative_log_likelihood": "nll",
    "bce": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "bce_with_logits": "binary_cross_entropy_with_logits",
    "bcewithlogits": "binary_cross_entropy_with_logits",
    "sigmoid_binary_cross_entropy": "binary_cross_entropy_with_logits",
    "l2": "mse",
    "mse_loss": "mse",
    "squared_error": "mse",
    "mean_squared_error": "mse",
    "l1": "mae",
    "l1_loss": "mae",
    "mean_absolute_error": "mae",
    "huber_loss": "huber",
    "smooth_l1_loss": "smooth_l1",
    "kl": "kl_div",
    "kld": "kl_div",
    "kl_divergence": "kl_div",
    "kullback_leibler": "kl_div",
}

_CLASS_LOSSES = ("cross_entropy", "nll")
_BINARY_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits")


@dataclass(frozen=True)
class Baseline:
    """A baseline and how it was obtained.

    Attributes:
      loss: the catalog name of the loss.
      value: the loss of the best constant guess.
      guess: the constant guess, in words (``"uniform over 27 classes"``).
      log_loss: True when ``value`` is a log-loss in nats (so bits and perplexity apply).
    """

    loss: str
    value: float
    guess: str
    log_loss: bool


def resolve_loss_name(loss: str | Callable[..., Any]) -> str:
    """The catalog name of ``loss`` (a name, a common alias such as ``"bce"`` or ``"l2"``, or a
    losskit loss function).  Raises ``ValueError`` for unknown names."""
    from ..core.catalog import catalog

    names = {info.name for info in catalog()}
    if callable(loss) and not isinstance(loss, str):
        for info in catalog():
            if info.function is loss:
                return info.name
        name = getattr(loss, "__name__", None)
        if name in names:
            return name
        raise ValueError(f"loss must be a losskit loss or its name; got {loss!r}")
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a loss name or a losskit loss function; got {type(loss).__name__}")
    key = loss.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in names:
        raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(sorted(names))}")
    return key


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """A concrete NumPy copy of an array of any library (diagnostics run on real numbers)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch
        x = x.detach().cpu().numpy()
    elif hasattr(x, "compute") and hasattr(x, "dask"):  # dask: a baseline needs the values
        x = x.compute()
    try:
        arr = np.asarray(x)
    except Exception:  # e.g. array-api-strict without __array__
        arr = np.from_dlpack(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array; got {type(x).__name__}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; a baseline needs at least one target")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _check_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    return int(num_classes)


def _check_priors(priors: Any) -> np.ndarray:
    p = np.asarray(priors, dtype=np.float64).reshape(-1)
    if p.size < 2 or np.any(p < 0) or not np.isfinite(p).all():
        raise ValueError(f"priors must be >= 2 non-negative class frequencies; got {priors!r}")
    if not math.isclose(float(p.sum()), 1.0, rel_tol=0, abs_tol=1e-6):
        raise ValueError(f"priors must sum to 1; got a sum of {float(p.sum()):.6g}")
    return p


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def _class_baseline(name, num_classes, targets, priors, ignore_index, axis) -> Baseline:
    if priors is not None:
        p = _check_priors(priors)
        return Baseline(name, _entropy(p), f"the class frequencies {np.round(p, 4).tolist()}", True)
    if targets is not None:
        t = _to_numpy(targets, "targets")
        if np.issubdtype(t.dtype, np.integer):
            t = t.reshape(-1)
            t = t[t != ignore_index]
            if t.size == 0:
                raise ValueError("targets holds only ignore_index; nothing to count")
            k = int(t.max()) + 1 if num_classes is None else _check_classes(num_classes)
            if t.min() < 0 or t.max() >= k:
                raise ValueError(
                    f"targets holds class index {int(t.max() if t.max() >= k else t.min())}, "
                    f"outside [0, {k - 1}] for {k} classes"
                )
            p = np.bincount(t, minlength=k) / t.size
            return Baseline(
                name, _entropy(p), f"the class frequencies of {t.size} targets over {k} classes", True
            )
        if name == "nll":
            raise TypeError(f"nll targets must be integer class indices; got dtype {t.dtype}")
        if not np.issubdtype(t.dtype, np.floating) or t.ndim == 0:
            raise TypeError(
                f"targets must be integer class indices or class probabilities; got dtype {t.dtype}"
            )
        q = np.moveaxis(t.astype(np.float64), axis, -1).reshape(-1, t.shape[axis])
        mean_q = q.mean(axis=0)
        value = float(-_xlogy(q, mean_q).sum(axis=1).mean())
        return Baseline(name, value, f"the mean target distribution over {q.shape[1]} classes", True)
    if num_classes is None:
        raise ValueError(f"the {name} baseline needs num_classes, priors or targets")
    k = _check_classes(num_classes)
    return Baseline(name, math.log(k), f"uniform over {k} classes (ln {k})", True)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    return -(_xlogy(p, p) + _xlogy(1.0 - p, 1.0 - p))


def _binary_baseline(name, targets, priors) -> Baseline:
    if priors is not None:
        p = np.asarray(priors, dtype=np.float64).reshape(-1)
        if np.any((p < 0) | (p > 1)) or not np.isfinite(p).all():
            raise ValueError(f"priors must be positive rates in [0, 1]; got {priors!r}")
        return Baseline(
            name, float(_binary_entropy(p).mean()), f"the positive rate(s) {np.round(p, 4).tolist()}", True
        )
    if targets is None:
        return Baseline(name, math.log(2.0), "0.5 for every label (balanced classes; ln 2)", True)
    y = _to_numpy(targets, "targets").astype(np.float64)
    if np.any((y < 0) | (y > 1)):
        raise ValueError("targets must be in [0, 1] for a binary cross-entropy baseline")
    # (N, L) targets are L labels, each with its own constant; anything else shares one rate
    y = y.reshape(y.shape[0], -1) if y.ndim == 2 else y.reshape(-1, 1)
    rate = y.mean(axis=0)
    value = float(-(_xlogy(y, rate) + _xlogy(1.0 - y, 1.0 - rate)).mean())
    guess = (
        f"the positive rate {rate[0]:.4g}"
        if rate.size == 1
        else f"each label's positive rate ({rate.size} labels)"
    )
    return Baseline(name, value, guess, True)


def _kl_baseline(name, num_classes, targets, axis) -> Baseline:
    if targets is None:
        if num_classes is None:
            raise ValueError("the kl_div baseline needs targets (or num_classes, for one-hot targets)")
        k = _check_classes(num_classes)
        return Baseline(
            name, math.log(k), f"uniform over {k} classes, against balanced one-hot targets", True
        )
    t = _to_numpy(targets, "targets").astype(np.float64)
    if t.ndim == 0:
        raise ValueError("kl_div targets need a class axis")
    q = np.moveaxis(t, axis, -1).reshape(-1, t.shape[axis])
    mean_q = q.mean(axis=0)
    value = float((_xlogy(q, q) - _xlogy(q, mean_q)).sum(axis=1).mean())
    return Baseline(name, value, f"the mean target distribution over {q.shape[1]} classes", True)


def _per_column(y: np.ndarray) -> np.ndarray:
    return y.reshape(y.shape[0], -1) if y.ndim >= 2 else y.reshape(-1, 1)


def _regression_baseline(name, fn, targets, options) -> Baseline:
    if targets is None:
        raise ValueError(f"the {name} baseline needs targets (the best constant depends on them)")
    y = _per_column(_to_numpy(targets, "targets").astype(np.float64))
    if name == "mse":
        return Baseline(
            name, float(y.var(axis=0).mean()), "the mean of the targets (baseline = their variance)", False
        )
    if name == "mae":
        med = np.median(y, axis=0)
        return Baseline(name, float(np.abs(y - med).mean()), "the median of the targets", False)
    # any other convex pointwise loss: bisect on the analytic gradient of the mean loss with
    # respect to the constant, column by column
    from ..core.gradients import value_and_grad

    vg = value_and_grad(fn)
    total = 0.0
    for col in y.T:
        lo, hi = float(col.min()), float(col.max())

        def slope(c: float, col: np.ndarray = col) -> float:
            return float(np.sum(vg(np.full_like(col, c), col, **options)[1]))

        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if slope(mid) > 0:
                hi = mid
            else:
                lo = mid
        c = 0.5 * (lo + hi)
        total += float(fn(np.full_like(col, c), col, **options))
    return Baseline(name, total / y.shape[1], "the constant that minimises the loss", False)


def baseline_report(
    loss: str | Callable[..., Any] = "cross_entropy",
    *,
    num_classes: int | None = None,
    targets: Any = None,
    priors: Any = None,
    ignore_index: int = -100,
    axis: int = -1,
    **options: Any,
) -> Baseline:
    """Like :func:`baseline_loss`, returning a :class:`Baseline` that also says which constant
    guess scores it and whether it is a log-loss in nats."""
    name = resolve_loss_name(loss)
    if name in _CLASS_LOSSES:
        return _class_baseline(name, num_classes, targets, priors, ignore_index, axis)
    if name in _BINARY_LOSSES:
        return _binary_baseline(name, targets, priors)
    if name == "kl_div":
        return _kl_baseline(name, num_classes, targets, axis)
    from ..core.catalog import lookup

    info = lookup(name)
    if info.family == "regression" and info.input_space == "values":
        return _regression_baseline(name, info.function, targets, options)
    raise ValueError(
        f"no baseline rule for {name!r} (a {info.family} loss); baselines are known for "
        "cross_entropy, nll, binary_cross_entropy(_with_logits), kl_div and the regression losses"
    )


def baseline_loss(
    loss: str | Callable[..., Any] = "cross_entropy",
    *,
    num_classes: int | None = None,
    targets: Any = None,
    priors: Any = None,
    ignore_index: int = -100,
    axis: int = -1,
    **options: Any,
) -> float:
    r"""The loss of the best constant guess, made before any learning.

    Compare a network's first loss with it: a well-initialised model starts close to it, and a
    trained one should end well below it.

    Args:
      loss: a loss name (``"cross_entropy"``, ``"bce"``, ``"mse"``, ...) or a losskit loss
        function (default ``"cross_entropy"``).
      num_classes: :math:`K`; with no targets the guess is uniform and the baseline
        :math:`\ln K` (``27`` gives 3.2958 nats).
      targets: the training targets (any array library): integer class indices (the guess is
        the class frequencies, the baseline their entropy), class probabilities (the mean
        distribution), binary labels (the positive rate, per label for ``(N, L)`` labels) or
        regression targets (the mean for MSE, giving their variance; the median for MAE; for
        other regression losses the minimising constant, per column of 2-D targets).
      priors: class frequencies (summing to 1) instead of ``targets``; for the binary losses,
        the positive rate(s).
      ignore_index: integer target value that is not counted (default -100, as
        :func:`losskit.cross_entropy`).
      axis: class axis of probability targets (default -1).
      **options: passed to a regression loss (e.g. ``delta=`` for ``huber``).

    Returns:
      The baseline as a float: in nats for the log-losses (see :func:`losskit.to_bits` and
      :func:`losskit.perplexity`), in the loss's own units otherwise.

    Raises ``ValueError`` when the loss has no baseline rule or the information is missing
    (e.g. ``"mse"`` without targets).

    Example::

        >>> round(baseline_loss("cross_entropy", num_classes=27), 4)
        3.2958
        >>> round(baseline_loss("mse", targets=np.array([2.0, 3.0, 5.0])), 4)
        1.5556
    """
    return baseline_report(
        loss,
        num_classes=num_classes,
        targets=targets,
        priors=priors,
        ignore_index=ignore_index,
        axis=axis,
        **options,
    ).value


# tasks and how their usual loss's baseline follows from the number of classes
def task_baseline(task: str | None, num_classes: int | None) -> Baseline | None:
    """The baseline of a task's usual loss from the number of classes alone, or ``None`` when
    it needs the targets (regression) or is unknown.  ``task=None`` with ``num_classes`` means
    multiclass."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    if task in ("binary", "multilabel"):
        return Baseline(
            "binary_cross_entropy_with_logits", math.log(2.0), "0.5 for every label (balanced; ln 2)", True
        )
    if task in (None, "multiclass", "sequence", "segmentation", "distribution", "contrastive"):
        if num_classes is None:
            return None
        k = _check_classes(num_classes)
        what = {"contrastive": "candidates", "sequence": "tokens in the vocabulary"}.get(
            task or "", "classes"
        )
        return Baseline("cross_entropy", math.log(k), f"uniform over {k} {what} (ln {k})", True)
    return None


TASKS = (
    "regression",
    "binary",
    "multiclass",
    "multilabel",
    "distribution",
    "contrastive",
    "ranking",
    "segmentation",
    "sequence",
)
