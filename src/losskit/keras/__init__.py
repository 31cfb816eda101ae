"""Keras 3 at the edge: one ``keras.losses.Loss`` subclass per loss in :func:`losskit.catalog`.
Importing this package imports Keras.

Each class calls its losskit function in Keras's order, ``loss(y_true, y_pred,
sample_weight=None)``, on the arrays of the running Keras backend (JAX or PyTorch; set
``KERAS_BACKEND`` before importing Keras), and honours Keras's ``reduction``
(``"sum_over_batch_size"``, ``"sum"``, ``"mean"``, ``"mean_with_sample_weight"``, ``None`` /
``"none"``), ``sample_weight`` and masks::

    import losskit.keras as lkk
    model.compile(optimizer="adam", loss=lkk.CrossEntropy(label_smoothing=0.1))

The classes are registered with ``keras.saving.register_keras_serializable(package="losskit")``
and carry their options in ``get_config``, so a model saved as ``.keras`` loads with its loss.
See :class:`~losskit.keras.base.LosskitLoss` for how the arguments map.
"""

from __future__ import annotations

try:
    import keras  # noqa: F401
except ModuleNotFoundError as error:  # exercised in a subprocess without keras
    if error.name not in (None, "keras"):  # Keras is there, the backend it was told to use is not
        raise ImportError(
            f"Keras cannot import its backend ({error.name}): set KERAS_BACKEND to 'jax' or 'torch' "
            "before importing Keras"
        ) from error
    raise ImportError("losskit.keras needs Keras 3: install it with pip install 'losskit[keras]'") from error

from .base import LosskitLoss
from .losses import *  # noqa: F403
from .losses import KERAS_LOSSES
from .losses import __all__ as _losses_all

__all__ = ["LosskitLoss", "KERAS_LOSSES", *_losses_all]
