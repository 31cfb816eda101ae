"""Jaccard, generalised Dice and ``batch=True`` against MONAI itself (float64, classes on
axis 1 as MONAI wants them): values for every reduction and the gradients of MONAI's autograd.
The Lovász losses against the paper's algorithm (Berman et al. 2018) written again with
PyTorch autograd in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.losses import DiceLoss, GeneralizedDiceLoss, TverskyLoss

import losskit as lk

SHAPE = (3, 4, 5, 2)  # (N, C, H, W)


def _inputs(rng, activation, integer, empty=False):
    if activation is None:
        x = rng.uniform(0.01, 1.0, size=SHAPE)
        x = x / x.sum(axis=1, keepdims=True)
    else:
        x = rng.normal(size=SHAPE) * 2
    labels = rng.integers(0, SHAPE[1], size=(SHAPE[0],) + SHAPE[2:])
    if empty:  # class 2 absent from sample 0, class 3 from every sample
        labels[0] = np.where(labels[0] == 2, 0, labels[0])
        labels = np.where(labels == 3, 1, labels)
    t = labels if integer else np.moveaxis(np.eye(SHAPE[1])[labels], -1, 1)
    return x, t


def _monai_call(module, x, t, activation):
    tx = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t[:, None] if t.dtype.kind == "i" else t)
    value = module(tx, tt)
    value.sum().backward()
    return value.detach().numpy(), tx.grad.numpy()


def _monai_options(activation, integer, ignore_background):
    return {
        "sigmoid": activation == "sigmoid",
        "softmax": activation == "softmax",
        "to_onehot_y": integer,
        "include_background": not ignore_background,
    }


def _check(fn, monai, x, t, options, reduction, rtol):
    expected, expected_grad = monai
    value, grad = lk.value_and_grad(fn, 0)(x, t, axis=1, reduction=reduction, **options)
    value = np.asarray(value)
    np.testing.assert_allclose(value, expected.reshape(value.shape), rtol=rtol, atol=1e-12)
    # atol relative to the largest entry: MONAI's float32 class weights (generalised Dice)
    # leave errors of rtol times the gradient's scale in entries that nearly cancel
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol * np.abs(expected_grad).max())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "activation,integer,ignore_background,batch,smooth",
    [
        (None, False, False, False, 1e-5),
        ("softmax", True, True, False, 0.5),
        ("sigmoid", False, False, True, 1.0),
        ("softmax", True, False, True, 1e-5),
    ],
)
def test_jaccard_matches_monai_dice_loss_jaccard(
    activation, integer, ignore_background, batch, smooth, reduction, rng
):
    """MONAI's Jaccard is (2TP + s') / (2(P + G - TP) + s'): ours with s' = 2 smooth; exact
    arithmetic, rtol 1e-7."""
    x, t = _inputs(rng, activation, integer)
    monai = DiceLoss(
        jaccard=True,
        smooth_nr=2 * smooth,
        smooth_dr=2 * smooth,
        batch=batch,
        reduction=reduction,
        **_monai_options(activation, integer, ignore_background),
    )
    options = {
        "activation": activation,
        "smooth": smooth,
        "ignore_background": ignore_background,
        "batch": batch,
    }
    _check(lk.jaccard, _monai_call(monai, x, t, activation), x, t, options, reduction, 1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["dice", "tversky"])
@pytest.mark.parametrize(
    "activation,integer,ignore_background",
    [(None, False, False), ("softmax", True, True), ("sigmoid", False, False)],
)
def test_batch_true_matches_monai(kind, activation, integer, ignore_background, reduction, rng):
    """``batch=True``: one ratio per class over the whole batch, as MONAI's; rtol 1e-7."""
    x, t = _inputs(rng, activation, integer)
    common = dict(batch=True, reduction=reduction, smooth_nr=0.3, smooth_dr=0.3)
    common.update(_monai_options(activation, integer, ignore_background))
    options = {"activation": activation, "smooth": 0.3, "ignore_background": ignore_background, "batch": True}
    if kind == "dice":
        monai, fn = DiceLoss(**common), lk.dice
    else:
        monai, fn = TverskyLoss(alpha=0.3, beta=0.8, **common), lk.tversky
        options.update(alpha=0.3, beta=0.8)
    _check(fn, _monai_call(monai, x, t, activation), x, t, options, reduction, 1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize(
    "activation,integer,ignore_background,batch,empty",
    [
        (None, False, False, False, False),
        ("softmax", True, True, False, True),
        ("sigmoid", False, False, True, True),
        ("softmax", True, False, True, False),
        (None, True, False, False, True),
    ],
)
def test_generalized_dice_matches_monai(
    weight_type, activation, integer, ignore_background, batch, empty, reduction, rng
):
    """MONAI computes the class weights in float32 (``ground_o.float()``), the rest in float64:
    rtol 1e-6 for that rounding.  Empty classes take the largest weight, as MONAI's."""
    x, t = _inputs(rng, activation, integer, empty=empty)
    monai = GeneralizedDiceLoss(
        w_type=weight_type,
        batch=batch,
        reduction=reduction,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        **_monai_options(activation, integer, ignore_background),
    )
    options = {
        "weight_type": weight_type,
        "activation": activation,
        "ignore_background": ignore_background,
        "batch": batch,
    }
    _check(lk.generalized_dice, _monai_call(monai, x, t, activation), x, t, options, reduction, 1e-6)


def _torch_generalized_dice(p, t, weight_type, batch):
    """MONAI's formula written without its in-place weight update, so that autograd reaches the
    target too (MONAI's own code cannot be differentiated with respect to the target)."""
    dims = (0, 2, 3) if batch else (2, 3)
    tp, g = (p * t).sum(dims), t.sum(dims)
    card = p.sum(dims) + g
    if weight_type == "uniform":
        w = torch.ones_like(g)
    else:
        base = g * g if weight_type == "square" else g
        empty = base == 0
        w = torch.where(empty, torch.zeros_like(g), 1 / torch.where(empty, torch.ones_like(g), base))
        w = torch.where(empty, w.max(-1, keepdim=True)[0], w)
    return 1 - (2 * (w * tp).sum(-1) + 1e-5) / ((w * card).sum(-1) + 1e-5)


@pytest.mark.parametrize("weight_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("batch", [False, True])
def test_generalized_dice_target_gradient_matches_autograd(weight_type, batch, rng):
    x = rng.uniform(0.01, 1.0, size=SHAPE)
    t = rng.uniform(0.01, 0.99, size=SHAPE)
    t[0, 2] = 0.0  # an empty class: its weight is the sample's largest
    t[:, 3] = 0.0 if batch else t[:, 3]
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    expected = _torch_generalized_dice(tx, tt, weight_type, batch).mean()
    expected.backward()
    value, grads = lk.value_and_grad(lk.generalized_dice, (0, 1))(
        x, t, axis=1, weight_type=weight_type, batch=batch
    )
    np.testing.assert_allclose(value, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(grads[1], tt.grad.numpy(), rtol=1e-9, atol=1e-15)


def test_bad_options_are_refused_naming_them():
    x = np.full((2, 3, 4), 1 / 3)
    t = np.zeros((2, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="weight_type"):
        lk.generalized_dice(x, t, axis=1, weight_type="cubic")
    with pytest.raises(TypeError, match="batch"):
        lk.jaccard(x, t, axis=1, batch=1)
    with pytest.raises(ValueError, match="smooth"):
        lk.jaccard(x, t, axis=1, smooth=-1.0)
    with pytest.raises(ValueError, match="input"):
        lk.generalized_dice(x * 4, t, axis=1)


# -- Lovász: the paper's algorithm with torch autograd ------------------------------------------


def _torch_lovasz_grad(gt_sorted):
    total = gt_sorted.sum()
    intersection = total - gt_sorted.cumsum(0)
    union = total + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def _torch_lovasz_hinge_flat(logits, labels):
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True, stable=True)
    return torch.dot(torch.relu(errors_sorted), _torch_lovasz_grad(labels[perm]))


def _torch_lovasz_hinge(logits, labels, per_image):
    if per_image:
        return torch.stack(
            [_torch_lovasz_hinge_flat(z.reshape(-1), y.reshape(-1)) for z, y in zip(logits, labels)]
        )
    return _torch_lovasz_hinge_flat(logits.reshape(-1), labels.reshape(-1))


def _torch_lovasz_softmax_flat(probas, labels, classes):
    losses = []
    for c in range(probas.shape[1]) if isinstance(classes, str) else classes:
        fg = (labels == c).to(probas.dtype)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, dim=0, descending=True, stable=True)
        losses.append(torch.dot(errors_sorted, _torch_lovasz_grad(fg[perm])))
    return torch.stack(losses).mean() if losses else probas.sum() * 0.0


def _torch_lovasz_softmax(probas, labels, classes, per_image):
    """(N, C, H, W) probabilities, as the paper's code."""

    def flat(p, y):
        return p.movedim(0, -1).reshape(-1, p.shape[0]), y.reshape(-1)

    if per_image:
        return torch.stack([_torch_lovasz_softmax_flat(*flat(p, y), classes) for p, y in zip(probas, labels)])
    p = probas.movedim(1, -1).reshape(-1, probas.shape[1])
    return _torch_lovasz_softmax_flat(p, labels.reshape(-1), classes)


def _reduced(t, reduction):
    return t.mean() if reduction == "mean" else t.sum() if reduction == "sum" else t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("per_image", [True, False])
def test_lovasz_hinge_matches_the_papers_algorithm(per_image, reduction, rng):
    """Exact arithmetic in the same order: rtol 1e-12."""
    y = rng.integers(0, 2, size=(4, 6, 5))
    y[1] = 0  # an image without foreground
    z = rng.normal(size=y.shape) * 2
    tz = torch.tensor(z, requires_grad=True)
    expected = _reduced(_torch_lovasz_hinge(tz, torch.tensor(y, dtype=torch.float64), per_image), reduction)
    expected.sum().backward()
    value, grad = lk.value_and_grad(lk.lovasz_hinge, 0)(z, y, per_image=per_image, reduction=reduction)
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "classes,per_image",
    [("present", False), ("present", True), ("all", False), ("all", True), ((0, 2), True)],
)
def test_lovasz_softmax_matches_the_papers_algorithm(classes, per_image, reduction, rng):
    """Exact arithmetic in the same order: rtol 1e-12."""
    shape = (3, 4, 5, 3)  # (N, C, H, W)
    x = rng.uniform(0.02, 1.0, size=shape)
    x = x / x.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=(3, 5, 3))
    labels[0] = np.where(labels[0] == 2, 1, labels[0])  # class 2 absent from image 0
    labels = np.where(labels == 3, 0, labels)  # class 3 absent everywhere
    tx = torch.tensor(x, requires_grad=True)
    expected = _torch_lovasz_softmax(tx, torch.tensor(labels), classes, per_image)
    expected = _reduced(expected, reduction)
    expected.sum().backward()
    value, grad = lk.value_and_grad(lk.lovasz_softmax, 0)(
        x, labels, classes=classes, per_image=per_image, axis=1, reduction=reduction
    )
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_lovasz_hinge_is_the_jaccard_loss_of_the_thresholded_prediction():
    """Errors of 0 or 1 (logits of +-1 ... here 0 and +-1): the Lovász extension equals the set
    function, the Jaccard loss of the prediction z > 0."""
    y = np.array([[1, 1, 0, 0, 1]])
    z = np.array([[1.0, 0.0, -1.0, 0.0, 1.0]])  # pixel 1 missed, pixel 3 a false positive
    # errors 1 - z s: (0, 1, 0, 1, 0); wrong pixels {1, 3}: Jaccard loss 1 - 2/4
    assert float(lk.lovasz_hinge(z, y)) == pytest.approx(0.5)


def test_lovasz_bad_input_is_refused_naming_the_argument():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="labels"):
        lk.lovasz_hinge(z, np.full((2, 3), 2))
    with pytest.raises(ValueError, match="labels"):
        lk.lovasz_hinge(z, np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="per_image"):
        lk.lovasz_hinge(z, np.zeros((2, 3), dtype=np.int64), per_image="yes")
    with pytest.raises(TypeError, match="logits"):
        lk.lovasz_hinge(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3), dtype=np.int64))
    p = np.full((2, 3, 4), 0.25)
    labels = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="classes"):
        lk.lovasz_softmax(p, labels, classes="some")
    with pytest.raises(ValueError, match="classes"):
        lk.lovasz_softmax(p, labels, classes=(0, 4))
    with pytest.raises(ValueError, match="classes"):
        lk.lovasz_softmax(p, labels, classes=())
    with pytest.raises(ValueError, match="labels"):
        lk.lovasz_softmax(p, labels + 4)
    with pytest.raises(TypeError, match="labels"):
        lk.lovasz_softmax(p, labels * 1.0)
    with pytest.raises(ValueError, match="probabilities"):
        lk.lovasz_softmax(p * 8, labels)
