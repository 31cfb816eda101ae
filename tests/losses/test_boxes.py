"""The box losses beyond the shared table: torchvision's detached CIoU alpha, degenerate,
disjoint, touching and identical boxes, the box formats agreeing, worked numbers, bad input.

The reference is torchvision's published formulas written again in PyTorch, float64
(``tests/support/cases/boxes.py``); its autograd gives the reference gradients.  Tolerances are
rtol 1e-7 on values (both sides evaluate the same closed form) and rtol 1e-6 on gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import losskit as lk
from tests.support.cases.boxes import from_xyxy, random_xyxy, torch_box_loss

KINDS = {
    "iou": lk.iou_loss,
    "giou": lk.giou_loss,
    "diou": lk.diou_loss,
    "ciou": lk.ciou_loss,
    "eiou": lk.eiou_loss,
}
ALL = pytest.mark.parametrize("kind", list(KINDS))


def _reference(kind, pred, target, **kwargs):
    """Reference per-box loss and the gradients of its sum with respect to both boxes."""
    p = torch.from_numpy(np.array(pred, dtype=np.float64)).requires_grad_(True)
    t = torch.from_numpy(np.array(target, dtype=np.float64)).requires_grad_(True)
    value = torch_box_loss(kind, p, t, **kwargs)
    gp, gt = torch.autograd.grad(value.sum(), [p, t])
    return value.detach().numpy(), gp.numpy(), gt.numpy()


def _ours(kind, pred, target, **kwargs):
    value, (gp, gt) = lk.value_and_grad(KINDS[kind], argnums=(0, 1))(pred, target, **kwargs)
    return np.asarray(value), gp, gt


def _assert_matches(kind, pred, target, grads=True, **kwargs):
    value, gp, gt = _ours(kind, pred, target, **kwargs)
    ref_value, ref_gp, ref_gt = _reference(kind, pred, target, **kwargs)
    np.testing.assert_allclose(value, ref_value, rtol=1e-7, atol=1e-12)
    if grads:
        np.testing.assert_allclose(gp, ref_gp, rtol=1e-6, atol=1e-10, err_msg="input")
        np.testing.assert_allclose(gt, ref_gt, rtol=1e-6, atol=1e-10, err_msg="target")


# -- CIoU: alpha detached, as torchvision ------------------------------------------------------------


@pytest.mark.parametrize("box_format", ["xyxy", "cxcywh"])
def test_ciou_default_gradient_is_torchvisions_with_alpha_detached(box_format, rng):
    pred, target = random_xyxy(rng, (8,)), random_xyxy(rng, (8,))
    pred[::2] = target[::2] + rng.normal(scale=0.6, size=(4, 4))
    pred[::2, 2:] = np.maximum(pred[::2, 2:], pred[::2, :2] + 0.2)
    pred, target = from_xyxy(pred, box_format), from_xyxy(target, box_format)
    _assert_matches("ciou", pred, target, box_format=box_format)
    # detaching changes the gradient, not the value
    full_value, full_gp, _ = _ours("ciou", pred, target, box_format=box_format, detach_alpha=False)
    value, gp, _ = _ours("ciou", pred, target, box_format=box_format)
    np.testing.assert_array_equal(full_value, value)
    assert not np.allclose(full_gp, gp, rtol=1e-6)
    _, ref_full, _ = _reference("ciou", pred, target, box_format=box_format, detach_alpha=False)
    np.testing.assert_allclose(full_gp, ref_full, rtol=1e-6, atol=1e-10)


def test_ciou_autograd_through_losskit_gives_the_detached_gradient(rng):
    import jax
    import jax.numpy as jnp

    pred, target = random_xyxy(rng, (6,)), random_xyxy(rng, (6,))
    pred[:3] = target[:3] + np.array([0.3, -0.2, 0.9, 0.1])
    _, analytic = lk.value_and_grad(lk.ciou_loss)(pred, target)
    t = torch.from_numpy(pred).requires_grad_(True)
    lk.ciou_loss(t, torch.from_numpy(target), reduction="sum").backward()
    np.testing.assert_allclose(t.grad.numpy(), analytic, rtol=1e-10)
    g = jax.jit(jax.grad(lambda b: lk.ciou_loss(jnp.asarray(b), jnp.asarray(target), reduction="sum")))(
        jnp.asarray(pred)
    )
    np.testing.assert_allclose(np.asarray(g), analytic, rtol=1e-10)


def test_detach_alpha_must_be_a_bool():
    with pytest.raises(TypeError, match="detach_alpha"):
        lk.ciou_loss(np.array([0.0, 0, 1, 1]), np.array([0.0, 0, 1, 1]), detach_alpha=1)


# -- degenerate, disjoint, touching, identical ----------------------------------------------------


@ALL
def test_zero_width_boxes_match_the_reference(kind):
    # zero-width predictions and targets (x1 == x2), inside, across and away from the other box
    pred = np.array([[1.0, 1.0, 1.0, 3.0], [0.0, 0.0, 4.0, 4.0], [2.0, 0.5, 2.0, 2.5], [7.0, 7.0, 7.0, 9.0]])
    target = np.array(
        [[0.0, 0.0, 2.0, 4.0], [1.5, 1.0, 1.5, 3.0], [1.0, 1.0, 3.5, 2.0], [0.0, 0.0, 1.0, 2.0]]
    )
    _assert_matches(kind, pred, target)
    value = np.asarray(KINDS[kind](pred, target))
    assert np.all(np.isfinite(value)) and np.all(value >= 1.0 - 1e-12)  # IoU 0


@ALL
def test_zero_height_boxes_match_the_reference_value(kind):
    pred = np.array([[1.0, 1.0, 3.0, 1.0], [0.0, 2.0, 5.0, 2.0]])
    target = np.array([[0.0, 0.0, 2.0, 4.0], [1.0, 1.0, 2.0, 3.0]])
    # torchvision's CIoU gradient at h = 0 is NaN (atan(w / 0)); its value is finite
    _assert_matches(kind, pred, target, grads=kind != "ciou")
    _, gp, gt = _ours(kind, pred, target)
    assert np.isfinite(gp).all() and np.isfinite(gt).all()


def test_ciou_of_a_point_box_is_finite_where_torchvision_gives_nan():
    point, box = np.array([[1.0, 1.0, 1.0, 1.0]]), np.array([[0.0, 0.0, 2.0, 4.0]])
    ref, _, _ = _reference("ciou", point, box)
    assert np.isnan(ref).all()  # atan(0 / 0)
    value, gp, gt = _ours("ciou", point, box)
    # the point's angle is atan2(0, 0) = 0: v = 4/pi^2 atan(1/2)^2, beside the DIoU loss
    v = 4 / math.pi**2 * math.atan(0.5) ** 2
    alpha = v / (1 + v + 1e-7)
    diou = np.asarray(lk.diou_loss(point, box))
    np.testing.assert_allclose(value, diou + alpha * v, rtol=1e-12)
    assert np.isfinite(gp).all() and np.isfinite(gt).all()


@ALL
def test_disjoint_boxes_have_iou_zero_and_the_enclosing_terms(kind, rng):
    target = random_xyxy(rng, (5,), high=4.0)
    pred = random_xyxy(rng, (5,), low=12.0, high=20.0)  # far right and below every target
    _assert_matches(kind, pred, target)
    value = np.asarray(KINDS[kind](pred, target))
    if kind == "iou":
        np.testing.assert_array_equal(value, 1.0)
        _, g = lk.value_and_grad(lk.iou_loss)(pred, target)
        np.testing.assert_array_equal(g, 0.0)  # nothing to pull disjoint boxes together
    else:
        assert np.all(value > 1.0)
        _, g = lk.value_and_grad(KINDS[kind])(pred, target)
        # the enclosing-box term pulls the prediction back towards the target (to the left, up)
        assert np.all(g[:, 0] + g[:, 2] > 0) and np.all(g[:, 1] + g[:, 3] > 0)


@ALL
def test_touching_boxes_have_no_intersection(kind):
    # sharing an edge, or a corner: torchvision counts the intersection where both sides are > 0
    pred = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    target = np.array([[2.0, 0.0, 4.0, 2.0], [1.0, 1.0, 3.0, 2.0]])
    _assert_matches(kind, pred, target)
    if kind == "iou":
        np.testing.assert_array_equal(np.asarray(lk.iou_loss(pred, target)), 1.0)


@ALL
@pytest.mark.parametrize("box_format", ["xyxy", "xywh", "cxcywh"])
def test_identical_boxes_score_zero(kind, box_format, rng):
    boxes = from_xyxy(random_xyxy(rng, (6,)), box_format)
    fn = KINDS[kind]
    # with eps = 0 exactly 0, with a zero gradient (the ties split evenly, as in PyTorch)
    value, (gp, gt) = lk.value_and_grad(fn, argnums=(0, 1))(
        boxes, boxes.copy(), box_format=box_format, eps=0.0
    )
    np.testing.assert_array_equal(np.asarray(value), 0.0)
    np.testing.assert_allclose(gp, 0.0, atol=1e-14)
    np.testing.assert_allclose(gt, 0.0, atol=1e-14)
    # with the default eps, eps / (area + eps), torchvision's number
    area = (
        (boxes[:, 2] * boxes[:, 3])
        if box_format != "xyxy"
        else ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    )
    default = np.asarray(fn(boxes, boxes.copy(), box_format=box_format))
    np.testing.assert_allclose(default, 1e-7 / (area + 1e-7), rtol=1e-6)
    ref, _, _ = _reference(kind, boxes, boxes.copy(), box_format=box_format)
    np.testing.assert_allclose(default, ref, rtol=1e-7)


def test_identical_ciou_boxes_with_eps_zero_have_alpha_zero(rng):
    boxes = random_xyxy(rng, (3,))
    value = lk.ciou_loss(boxes, boxes.copy(), eps=0.0, detach_alpha=False)
    np.testing.assert_array_equal(np.asarray(value), 0.0)  # alpha = 0/0 is taken as 0


# -- box formats ---------------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
def test_box_formats_give_the_same_loss_and_the_converted_gradient(kind, box_format, rng):
    pred, target = random_xyxy(rng, (2, 4)), random_xyxy(rng, (2, 4))
    pred[0] = target[0] + rng.normal(scale=0.5, size=(4, 4))
    pred[..., 2:] = np.maximum(pred[..., 2:], pred[..., :2] + 0.1)
    fn = KINDS[kind]
    value, (gp, gt) = lk.value_and_grad(fn, argnums=(0, 1))(pred, target, reduction="mean")
    conv_p, conv_t = from_xyxy(pred, box_format), from_xyxy(target, box_format)
    v2, (gp2, gt2) = lk.value_and_grad(fn, argnums=(0, 1))(
        conv_p, conv_t, box_format=box_format, reduction="mean"
    )
    np.testing.assert_allclose(v2, value, rtol=1e-12)
    # d/d(format) = J^T d/d(xyxy), J the Jacobian of format -> xyxy
    if box_format == "xywh":
        jac = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=float)
    else:
        jac = np.array([[1, 0, -0.5, 0], [0, 1, 0, -0.5], [1, 0, 0.5, 0], [0, 1, 0, 0.5]], dtype=float)
    np.testing.assert_allclose(gp2, gp @ jac, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gt2, gt @ jac, rtol=1e-10, atol=1e-14)
    # the round trip: xyxy = J (format), back to the corners the loss was given
    np.testing.assert_allclose(conv_p @ jac.T, pred, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv_t @ jac.T, target, rtol=1e-12, atol=1e-12)


# -- worked numbers, dtypes, reductions ------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,target,expected",
    [
        ("iou", [1.0, 1.0, 3.0, 3.0], 1 - 1 / 7),
        ("giou", [1.0, 1.0, 3.0, 3.0], 1 - 1 / 7 + 2 / 9),
        ("diou", [1.0, 1.0, 3.0, 3.0], 1 - 1 / 7 + 2 / 18),
        ("eiou", [1.0, 1.0, 4.0, 3.0], 1 - 1 / 9 + 3.25 / 25 + 1 / 16),
    ],
)
def test_worked_numbers(kind, target, expected):
    value = float(KINDS[kind](np.array([0.0, 0.0, 2.0, 2.0]), np.array(target), eps=0.0))
    assert value == pytest.approx(expected, rel=1e-12)


def test_ciou_worked_number():
    v = 4 / math.pi**2 * (math.atan(1.5) - math.atan(1.0)) ** 2
    alpha = v / (1 - 1 / 9 + v)
    value = float(lk.ciou_loss(np.array([0.0, 0.0, 2.0, 2.0]), np.array([1.0, 1.0, 4.0, 3.0]), eps=0.0))
    assert value == pytest.approx(1 - 1 / 9 + 3.25 / 25 + alpha * v, rel=1e-12)


@ALL
def test_float32_and_integer_targets(kind, rng):
    pred, target = random_xyxy(rng, (5,)), np.round(random_xyxy(rng, (5,)))
    fn = KINDS[kind]
    expected = np.asarray(fn(pred, target))
    single = fn(pred.astype(np.float32), target.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, rtol=1e-5)
    integer = fn(pred, target.astype(np.int64))
    assert integer.dtype == np.float64
    np.testing.assert_allclose(integer, expected, rtol=1e-14)


@ALL
def test_default_reduction_is_none_and_where_masks(kind, rng):
    pred, target = random_xyxy(rng, (3, 2)), random_xyxy(rng, (3, 2))
    fn = KINDS[kind]
    per = np.asarray(fn(pred, target))
    assert per.shape == (3, 2)
    where = np.array([True, False])
    np.testing.assert_allclose(fn(pred, target, reduction="mean", where=where), per[:, 0].mean(), rtol=1e-12)
    np.testing.assert_allclose(fn(pred, target, reduction="sum"), per.sum(), rtol=1e-12)
    single = np.asarray(fn(pred[0, 0], target[0, 0]))  # one box, shape (4,)
    assert single.shape == ()
    np.testing.assert_allclose(single, per[0, 0], rtol=1e-14)


# -- bad input -------------------------------------------------------------------------------------


@ALL
def test_bad_input_is_refused(kind):
    fn = KINDS[kind]
    box = np.array([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"input must hold boxes along its last axis, shape \(\.\.\., 4\)"):
        fn(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target must hold boxes"):
        fn(box, np.zeros((1, 5)))
    with pytest.raises(ValueError, match="same shape"):
        fn(box, np.concatenate([box, box]))
    with pytest.raises(ValueError, match=r"input holds a box with a negative width or height.*x2 >= x1"):
        fn(np.array([[2.0, 0.0, 1.0, 1.0]]), box)
    with pytest.raises(ValueError, match=r"target holds a box with a negative width or height.*y2 >= y1"):
        fn(box, np.array([[0.0, 1.0, 1.0, 0.5]]))
    with pytest.raises(ValueError, match=r"input holds .*box_format='cxcywh'"):
        fn(np.array([[0.0, 0.0, -1.0, 1.0]]), box, box_format="cxcywh")
    with pytest.raises(ValueError, match="box_format"):
        fn(box, box, box_format="yxyx")
    with pytest.raises(ValueError, match="eps"):
        fn(box, box, eps=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        fn(box, box, reduction="batchmean")
    with pytest.raises(TypeError, match="input"):
        fn(np.array([[0, 0, 1, 1]]), box)
    with pytest.raises(ValueError, match="input is empty"):
        fn(np.zeros((0, 4)), np.zeros((0, 4)))


def test_x2_below_x1_is_not_checked_under_jit():
    import jax
    import jax.numpy as jnp

    bad, box = jnp.asarray([[2.0, 0.0, 1.0, 1.0]]), jnp.asarray([[0.0, 0.0, 1.0, 1.0]])
    value = jax.jit(lk.giou_loss)(bad, box)  # traced: the value check is skipped, nothing raises
    assert value.shape == (1,)
