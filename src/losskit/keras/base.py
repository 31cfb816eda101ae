"""The base of the ``losskit.keras`` losses: a ``keras.losses.Loss`` that calls one losskit
function.

How the arguments map:

- Keras calls ``loss(y_true, y_pred, sample_weight=None)``; the losskit function takes the
  prediction first.  ``y_pred`` is the function's first array (``input``, ``logits``,
  ``embeddings``, ...), ``y_true`` its second; a function of more arrays takes ``y_true`` as a
  tuple of the others in order (``TripletMargin``: ``y_true = (positive, negative)``; ``CTC``:
  ``y_true = (targets, input_lengths, target_lengths)``).
- Keras converts ``y_true`` to the loss's float dtype.  A loss over a class axis whose
  ``y_true`` has one dimension fewer than ``y_pred`` (or a trailing dimension of 1 where
  ``y_pred`` has classes: Keras's sparse labels) gets it back as integer class indices; so do
  the integer labels of the metric-learning losses and CTC's targets and lengths.  Otherwise
  ``y_true`` is a float target (one-hot or soft labels, regression targets).
- ``call`` returns one loss per sample, as Keras's own losses do: the function runs with
  ``reduction="none"`` and its per-element losses are reduced over every axis but the first —
  averaged, or summed for a loss whose losskit default is ``"batchmean"`` (``KLDiv``) — so
  that Keras's default ``"sum_over_batch_size"`` gives the losskit function's own default
  value.  Keras then applies ``sample_weight``, the mask and the reduction.  Where losskit's
  default is not a plain mean over samples, the Keras value is the mean of the per-sample
  values instead: the losses over pairs, proxies or lists of a batch (``NTXent``,
  ``ContrastivePairs``, ``LiftedStructure``, ``NPair``, ``MinedTripletMargin``,
  ``ProxyAnchor``) average each sample's row of pair losses rather than
  every counted pair, and ``CTC`` gives each sequence's negative log-likelihood, as Keras's
  own ``CTC`` does, where losskit's ``"mean"`` (PyTorch's) first divides it by the target
  length.
- Every option of the losskit function is a keyword argument of the constructor with the same
  default and appears in ``get_config``; array options (class weights) are stored as lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["LosskitLoss"]


def _plain(value: Any) -> Any:
    """An option as a JSON-friendly value: arrays (and tuples) as lists."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(keras.ops.convert_to_numpy(value)).tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class LosskitLoss(keras.losses.Loss):
    """A losskit function as a ``keras.losses.Loss`` (see the module docstring for the rules).

    Subclasses set the class attributes and define ``__init__`` with the function's options;
    the generated classes of :mod:`losskit.keras.losses` are the public ones.
    """

    #: the losskit function
    function: Callable[..., Any]
    #: the name of the losskit function in :func:`losskit.catalog`
    catalog_name: str = ""
    #: how many arrays ``y_true`` holds (0 for a loss of the prediction alone, e.g. a penalty)
    num_targets: int = 1
    #: positions in ``y_true`` (0-based) that always hold integers (labels, lengths)
    integer_targets: tuple[int, ...] = ()
    #: positions in ``y_true`` that hold booleans (flags)
    boolean_targets: tuple[int, ...] = ()
    #: the loss has a class axis: sparse ``y_true`` becomes integer class indices
    class_axis: bool = False
    #: how per-element losses become one per sample: ``"mean"`` or ``"sum"``
    per_sample: str = "mean"
    #: options that hold arrays (converted to the backend's tensors when called)
    array_options: tuple[str, ...] = ()

    def __init__(
        self,
        options: Mapping[str, Any],
        *,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.options = dict(options)

    # -- Keras's interface ---------------------------------------------------------------------

    def call(self, y_true: Any, y_pred: Any) -> Any:
        targets = self._targets(y_true, y_pred)
        options = dict(self.options)
        for k in self.array_options:
            if options.get(k) is not None:
                options[k] = ops.convert_to_tensor(options[k], dtype=self.dtype)
        losses = type(self).function(y_pred, *targets, reduction="none", **options)
        if len(losses.shape) > 1:
            axes = tuple(range(1, len(losses.shape)))
            losses = ops.sum(losses, axis=axes) if self.per_sample == "sum" else ops.mean(losses, axis=axes)
        return losses

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({k: _plain(v) for k, v in self.options.items()})
        config.setdefault("dtype", self.dtype)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LosskitLoss:
        return cls(**config)

    # -- the targets ---------------------------------------------------------------------------

    def _targets(self, y_true: Any, y_pred: Any) -> tuple[Any, ...]:
        if self.num_targets == 0:
            return ()
        if self.num_targets == 1:
            targets = [y_true]
        else:
            if not isinstance(y_true, (tuple, list)) or len(y_true) != self.num_targets:
                raise ValueError(
                    f"{type(self).__name__}: y_true must be a tuple of {self.num_targets} arrays "
                    f"(the arguments of losskit.{self.catalog_name} after the prediction)"
                )
            targets = list(y_true)
        for i in self.integer_targets:
            targets[i] = ops.cast(targets[i], "int32")
        for i in self.boolean_targets:
            targets[i] = ops.cast(targets[i], "bool")
        if self.class_axis and 0 not in self.integer_targets:
            targets[0] = self._sparse_labels(targets[0], y_pred)
        return tuple(targets)

    def _sparse_labels(self, y_true: Any, y_pred: Any) -> Any:
        """Keras's sparse labels (one dimension fewer than the prediction, or a trailing 1
        against a class axis) as integer class indices; dense targets as they are."""
        true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
        axis = self.options.get("axis", -1)
        axis = -1 if axis is None else axis
        if true_rank == pred_rank - 1:
            return ops.cast(y_true, "int32")
        if (
            true_rank == pred_rank
            and y_true.shape[axis] == 1
            and y_pred.shape[axis] not in (1, None)
        ):
            return ops.cast(ops.squeeze(y_true, axis=axis), "int32")
        return y_true
