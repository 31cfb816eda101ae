"""Which columns (or TensorBoard tags) of a log hold the train and the validation loss."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["normalise", "pick_loss_columns", "listing", "is_test_name", "VAL_TOKENS", "TEST_TOKENS"]

VAL_TOKENS = ("val", "valid", "validation", "eval", "evaluation", "dev")
TEST_TOKENS = ("test", "testing")  # a held-out curve, used as validation when there is none
TRAIN_TOKENS = ("train", "training", "trn")
# loss-like names that are not the loss being optimised
_NOT_LOSS = ("scale", "scaler", "weight", "coef", "runtime", "lr")

# preferred spellings, best first (after normalisation)
TRAIN_PREFERRED = (
    "train_loss",
    "loss_train",
    "training_loss",
    "train_loss_step",
    "train_epoch_loss",
    "epoch_loss_train",
    "train_loss_epoch",
    "loss",
    "epoch_loss",
    "batch_loss",
)
VAL_PREFERRED = (
    "val_loss",
    "loss_val",
    "validation_loss",
    "valid_loss",
    "eval_loss",
    "loss_validation",
    "val_loss_epoch",
    "validation_epoch_loss",
    "epoch_loss_validation",
)
TEST_PREFERRED = ("test_loss", "loss_test", "testing_loss", "test_epoch_loss", "test_loss_epoch")


def listing(names: Sequence[str]) -> str:
    """Column names for a one-line message: ``a, b, c`` (``none`` when empty), a name with
    line breaks or other unprintable characters in its ``repr`` form."""
    return ", ".join(n if n.isprintable() else repr(n) for n in names) or "none"


def normalise(name: str) -> str:
    """``"Validation/Loss"`` -> ``"validation_loss"``: lower case, separators to ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _tokens(name: str) -> set[str]:
    return set(normalise(name).split("_"))


def _is_loss(name: str) -> bool:
    toks = _tokens(name)
    return "loss" in toks and not (toks & set(_NOT_LOSS)) and not (toks & set(TEST_TOKENS))


def is_test_name(name: str) -> bool:
    """Whether ``name`` is a test-loss column/tag (``Loss/test``, ``test_loss``, ``test/loss``)."""
    toks = _tokens(name)
    return "loss" in toks and not (toks & set(_NOT_LOSS)) and bool(toks & set(TEST_TOKENS))


def _rank(name: str, preferred: Sequence[str]) -> tuple[int, int]:
    n = normalise(name)
    return (preferred.index(n) if n in preferred else len(preferred), len(n))


def pick_loss_columns(
    names: Sequence[str], train: str | None = None, val: str | None = None
) -> tuple[str, str | None]:
    """Choose the train-loss and validation-loss columns among ``names``.

    Explicit ``train``/``val`` names win (``ValueError`` if absent).  Otherwise a column whose
    name contains the word ``loss`` and a validation word (``val``, ``valid``, ``validation``,
    ``eval``, ``dev``) is the validation loss, and a loss column without one (and not ``test``)
    is the train loss; well-known spellings (``train_loss``, ``loss``, ``val_loss``,
    ``eval_loss``, ``validation/loss``, ...) are preferred.  When there is no validation
    column, a test-loss column (``Loss/test``, as PyTorch's TensorBoard tutorial names it,
    ``test_loss``, ``test/loss``) is the held-out curve instead (see :func:`is_test_name`).
    Raises ``ValueError`` when no train-loss column exists.
    """
    names = list(names)
    for given, what in ((train, "train"), (val, "validation")):
        if given is not None and given not in names:
            raise ValueError(f"no {what} loss column {given!r} in the log; columns: {listing(names)}")
    losses = [n for n in names if _is_loss(n)]
    vals = [n for n in losses if _tokens(n) & set(VAL_TOKENS)]
    trains = [n for n in losses if n not in vals]
    if train is None:
        if not trains:
            raise ValueError(
                "no train loss column found (looked for names like 'loss', 'train_loss', 'train/loss'); "
                f"columns: {listing(names)}; name it explicitly"
            )
        train = min(trains, key=lambda n: _rank(n, TRAIN_PREFERRED))
    if val is None and vals:
        val = min(vals, key=lambda n: _rank(n, VAL_PREFERRED))
    if val is None:
        tests = [n for n in names if is_test_name(n) and n != train]
        if tests:
            val = min(tests, key=lambda n: _rank(n, TEST_PREFERRED))
    return train, val
