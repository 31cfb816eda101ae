r"""Bounding-box regression losses: overlap of a predicted box with its target box.

Every loss here compares boxes pairwise: ``input`` and ``target`` have the same shape
``(..., 4)``, one box per row, and the per-box losses have shape ``(...)``.  The formulas are
torchvision's (``torchvision.ops.generalized_box_iou_loss``, ``distance_box_iou_loss``,
``complete_box_iou_loss`` and their helpers ``_loss_inter_union`` / ``_diou_iou_loss``), with
boxes :math:`(x_1, y_1, x_2, y_2)` of a prediction and :math:`(x_1^g, y_1^g, x_2^g, y_2^g)` of
the target:

.. math::
    I = [x_2^\cap - x_1^\cap]_+ \, [y_2^\cap - y_1^\cap]_+, \qquad
    x_1^\cap = \max(x_1, x_1^g),\ x_2^\cap = \min(x_2, x_2^g)\ (\text{and } y),

    U = (x_2 - x_1)(y_2 - y_1) + (x_2^g - x_1^g)(y_2^g - y_1^g) - I, \qquad
    \mathrm{IoU} = \frac{I}{U + \epsilon},

and the smallest enclosing box :math:`x_1^c = \min(x_1, x_1^g)`, :math:`x_2^c = \max(x_2,
x_2^g)` (and :math:`y`), of width :math:`c_w = x_2^c - x_1^c` and height
:math:`c_h = y_2^c - y_1^c`.

Degenerate boxes (zero width or height, so zero area) are accepted: their IoU is 0 and the
enclosing-box terms stay defined, ``eps`` keeping every denominator positive, as in
torchvision.  Disjoint boxes have IoU 0 (torchvision counts the intersection only where both
its sides are positive); the enclosing-box terms (GIoU, DIoU, CIoU, EIoU) still grow with the
distance between the boxes.  Identical boxes have loss :math:`\epsilon/(A + \epsilon)`
(:math:`A` the area), 0 when ``eps=0``.

Common options:

- ``box_format``: ``"xyxy"`` (default, corners), ``"xywh"`` (corner, width, height) or
  ``"cxcywh"`` (center, width, height), torchvision's ``box_convert`` names.  Boxes are
  converted to corners first; the gradient is returned in the format given.
- Boxes with :math:`x_2 < x_1` or :math:`y_2 < y_1` (a negative width or height in the other
  formats) are refused with a ValueError naming the argument (torchvision does not check them
  and returns numbers with no meaning); the check reads the values, so it is skipped under
  ``jax.jit`` and on lazy Dask arrays.
- ``eps``: added to the denominators (default 1e-7, torchvision's).
- ``reduction``: ``"none"`` (default, torchvision's default for its box losses), ``"mean"``,
  ``"sum"``.
- ``where``: optional boolean mask broadcastable to the per-box shape ``(...)``.

Gradients are analytic, with respect to the predicted boxes (``argnums=0``) and the target
boxes (``argnums=1``, floating targets).  At ties of the ``min``/``max`` above (identical
edges) the gradient splits evenly between the two boxes, as PyTorch's ``maximum`` and
``minimum`` do; with it the gradient at identical boxes is 0 (with ``eps=0``).
"""

from __future__ import annotations

import math

from ..core.backend import Array, cast, compute_dtype, finish, is_integer, namespace, stop_gradient
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import any_true, check_float_array, check_nonempty, check_number

__all__ = ["iou_loss", "giou_loss", "diou_loss", "ciou_loss", "eiou_loss"]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
_KINDS = ("iou", "giou", "diou", "ciou", "eiou")
_V_SCALE = 4.0 / math.pi**2


def _check_boxes(xp, boxes, name, box_format):
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"{name} must hold boxes along its last axis, shape (..., 4); got shape {tuple(boxes.shape)}"
        )
    if box_format == "xyxy":
        width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        rule = "x2 >= x1 and y2 >= y1 (box_format='xyxy': x1, y1, x2, y2)"
    else:
        width, height = boxes[..., 2], boxes[..., 3]
        rule = f"a width and height >= 0 (box_format={box_format!r})"
    if any_true(xp, (width < 0) | (height < 0)):
        raise ValueError(f"{name} holds a box with a negative width or height; boxes must have {rule}")


def _to_xyxy(xp, boxes, box_format):
    a, b, c, d = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    if box_format == "xyxy":
        return a, b, c, d
    if box_format == "xywh":
        return a, b, a + c, b + d
    return a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d  # cxcywh


def _from_xyxy_grad(xp, g1, h1, g2, h2, box_format):
    """The gradient with respect to the boxes as given, from that with respect to corners."""
    if box_format == "xyxy":
        parts = (g1, h1, g2, h2)
    elif box_format == "xywh":
        parts = (g1 + g2, h1 + h2, g2, h2)
    else:  # cxcywh
        parts = (g1 + g2, h1 + h2, 0.5 * (g2 - g1), 0.5 * (h2 - h1))
    return xp.stack(parts, axis=-1)


def _above(xp, a, b, dtype):
    """d max(a, b) / da: 1 where a > b, 1/2 at a tie, 0 below (PyTorch's convention)."""
    return xp.astype(a > b, dtype) + 0.5 * xp.astype(a == b, dtype)


def _box_loss(input, target, *, kind, box_format, eps, reduction, where, wrt, detach_alpha=True):
    xp = namespace(input=input, target=target, where=where)
    check_float_array(xp, input, "input")
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be 'xyxy', 'xywh' or 'cxcywh'; got {box_format!r}")
    eps = check_number(eps, "eps", low=0.0)
    _check_boxes(xp, input, "input", box_format)
    check_nonempty(input, "input")
    integer_target = is_integer(xp, target)
    if not integer_target:
        check_float_array(xp, target, "target")
    _check_boxes(xp, target, "target", box_format)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"target must have the same shape as input, one target box per predicted box; got input "
            f"{tuple(input.shape)} and target {tuple(target.shape)}"
        )

    out_dtype = input.dtype if integer_target else xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    px1, py1, px2, py2 = _to_xyxy(xp, cast(xp, input, dtype), box_format)
    gx1, gy1, gx2, gy2 = _to_xyxy(xp, cast(xp, target, dtype), box_format)

    # intersection and union (torchvision's _loss_inter_union)
    wp, hp, wg, hg = px2 - px1, py2 - py1, gx2 - gx1, gy2 - gy1
    area_p, area_g = wp * hp, wg * hg
    iw = xp.minimum(px2, gx2) - xp.maximum(px1, gx1)
    ih = xp.minimum(py2, gy2) - xp.maximum(py1, gy1)
    overlap = (iw > 0) & (ih > 0)
    zero = xp.zeros_like(iw)
    inter = xp.where(overlap, iw * ih, zero)
    union = area_p + area_g - inter
    union_eps = union + eps
    iou = inter / union_eps
    value = 1.0 - iou

    enclosing = kind != "iou"
    if enclosing:
        cw = xp.maximum(px2, gx2) - xp.minimum(px1, gx1)
        ch = xp.maximum(py2, gy2) - xp.minimum(py1, gy1)
    if kind == "giou":
        area_c = cw * ch
        value = value + (area_c - union) / (area_c + eps)
    if kind in ("diou", "ciou", "eiou"):
        dx = 0.5 * ((px1 + px2) - (gx1 + gx2))
        dy = 0.5 * ((py1 + py2) - (gy1 + gy2))
        rho2 = dx * dx + dy * dy
        diag2 = cw * cw + ch * ch + eps
        value = value + rho2 / diag2
    if kind == "eiou":
        dw, dh = wp - wg, hp - hg
        cw2, ch2 = cw * cw + eps, ch * ch + eps
        value = value + dw * dw / cw2 + dh * dh / ch2
    if kind == "ciou":
        theta_p, theta_g = xp.atan2(wp, hp), xp.atan2(wg, hg)
        dtheta = theta_g - theta_p
        v = _V_SCALE * dtheta * dtheta
        den_alpha = 1.0 - iou + v + eps
        # 0/0 only for identical boxes with eps=0, where v = 0: alpha is 0 there
        alpha = v / xp.where(den_alpha > 0, den_alpha, xp.ones_like(den_alpha))
        if detach_alpha:
            alpha = stop_gradient(alpha)
        value = value + alpha * v

    reducer = make_reducer(xp, reduction, tuple(value.shape), dtype, where=where)
    grads = {}
    need = {n for n in wrt if n == 0 or (n == 1 and not integer_target)}
    if need:
        coef = reducer.grad(xp.ones(tuple(value.shape), dtype=dtype))
        # partial derivatives of the loss, written L_<quantity>
        d_iou = -coef
        if kind == "ciou":
            if detach_alpha:
                d_v = coef * alpha
            else:  # alpha v = v^2 / D with D = 1 - iou + v + eps
                d_v = coef * alpha * (2.0 - alpha)
                d_iou = d_iou + coef * alpha * alpha
        d_inter = d_iou * (union_eps + inter) / (union_eps * union_eps)
        d_area = -d_iou * inter / (union_eps * union_eps)  # same for both areas
        d_cw = d_ch = zero
        d_wp, d_hp, d_wg, d_hg = zero, zero, zero, zero
        d_dx = d_dy = zero
        if kind == "giou":
            den_c = area_c + eps
            d_union = -coef / den_c
            d_c = coef * union_eps / (den_c * den_c)
            d_area = d_area + d_union
            d_inter = d_inter - d_union
            d_cw, d_ch = d_c * ch, d_c * cw
        if kind in ("diou", "ciou", "eiou"):
            d_dx, d_dy = coef * 2.0 * dx / diag2, coef * 2.0 * dy / diag2
            d_diag = -coef * 2.0 * rho2 / (diag2 * diag2)
            d_cw, d_ch = d_diag * cw, d_diag * ch
        if kind == "eiou":
            d_w, d_h = coef * 2.0 * dw / cw2, coef * 2.0 * dh / ch2
            d_wp, d_wg, d_hp, d_hg = d_w, -d_w, d_h, -d_h
            d_cw = d_cw - coef * 2.0 * cw * dw * dw / (cw2 * cw2)
            d_ch = d_ch - coef * 2.0 * ch * dh * dh / (ch2 * ch2)
        if kind == "ciou":
            d_theta = 2.0 * _V_SCALE * d_v * dtheta  # d/d theta_g; the negative for theta_p
            one = xp.ones_like(wp)
            r2p, r2g = wp * wp + hp * hp, wg * wg + hg * hg
            r2p = xp.where(r2p > 0, r2p, one)  # a point box: w = h = 0, the numerators are 0
            r2g = xp.where(r2g > 0, r2g, one)
            d_wp, d_hp = -d_theta * hp / r2p, d_theta * wp / r2p
            d_wg, d_hg = d_theta * hg / r2g, -d_theta * wg / r2g
        d_wp, d_hp = d_wp + d_area * hp, d_hp + d_area * wp
        d_wg, d_hg = d_wg + d_area * hg, d_hg + d_area * wg
        d_iw = d_inter * xp.where(overlap, ih, zero)
        d_ih = d_inter * xp.where(overlap, iw, zero)

        def corners(x1, y1, x2, y2, ox1, oy1, ox2, oy2, d_w, d_h, sign):
            gx1 = -d_w - d_iw * _above(xp, x1, ox1, dtype) + sign * 0.5 * d_dx
            gy1 = -d_h - d_ih * _above(xp, y1, oy1, dtype) + sign * 0.5 * d_dy
            gx2 = d_w + d_iw * _above(xp, ox2, x2, dtype) + sign * 0.5 * d_dx
            gy2 = d_h + d_ih * _above(xp, oy2, y2, dtype) + sign * 0.5 * d_dy
            if enclosing:
                gx1 = gx1 - d_cw * _above(xp, ox1, x1, dtype)
                gy1 = gy1 - d_ch * _above(xp, oy1, y1, dtype)
                gx2 = gx2 + d_cw * _above(xp, x2, ox2, dtype)
                gy2 = gy2 + d_ch * _above(xp, y2, oy2, dtype)
            return _from_xyxy_grad(xp, gx1, gy1, gx2, gy2, box_format)

        if 0 in need:
            grads[0] = corners(px1, py1, px2, py2, gx1, gy1, gx2, gy2, d_wp, d_hp, 1.0)
        if 1 in need:
            grads[1] = corners(gx1, gy1, gx2, gy2, px1, py1, px2, py2, d_wg, d_hg, -1.0)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="boxes",
    input_space="boxes",
    formula="1 - I / (U + eps)",
    torch=None,
)
@loss_function
def iou_loss(
    input: Array,
    target: Array,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "none",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""IoU loss: one minus the intersection over union of each predicted box and its target.

    .. math::
        \ell = 1 - \frac{I}{U + \epsilon}

    with :math:`I` and :math:`U` the intersection's and the union's areas (see the module
    docstring; torchvision's ``_loss_inter_union``, the first step of
    ``torchvision.ops.generalized_box_iou_loss``).  Values lie in [0, 1]; 1 for disjoint or
    degenerate boxes, whose gradient is then 0.

    Gradient: :math:`\partial\ell/\partial I = -(U + \epsilon + I)/(U + \epsilon)^2` and
    :math:`\partial\ell/\partial A = I/(U + \epsilon)^2` for either box's area :math:`A`,
    carried to the corners through the ``min``/``max`` of the intersection (``argnums=0``,
    and ``argnums=1`` for the target).

    Args:
      input: predicted boxes, shape ``(..., 4)``, in ``box_format``.
      target: target boxes of ``input``'s shape (floating, or integer coordinates).
      box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
      eps: :math:`\epsilon \ge 0` added to the denominators (default 1e-7).
      reduction: ``"none"`` (default, shape ``(...)``), ``"mean"`` or ``"sum"``.
      where: optional boolean mask over the per-box losses ``(...)``.

    Example: ``iou_loss([0, 0, 2, 2], [1, 1, 3, 3])`` is :math:`1 - 1/7 \approx 0.8571`.

    Equivalent: ``1 - torchvision.ops.box_iou(a, b).diagonal()`` (which has no ``eps``);
    ``torchvision.ops.generalized_box_iou_loss`` without its enclosing-box term.
    """
    return _box_loss(
        input, target, kind="iou", box_format=box_format, eps=eps, reduction=reduction, where=where, wrt=wrt
    )


@catalogued(
    family="boxes",
    input_space="boxes",
    formula="1 - IoU + (C - U) / (C + eps)",
    torch="torchvision.ops.generalized_box_iou_loss",
)
@loss_function
def giou_loss(
    input: Array,
    target: Array,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "none",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Generalized IoU loss (Rezatofighi et al. 2019), as
    ``torchvision.ops.generalized_box_iou_loss``:

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{C - U}{C + \epsilon}, \qquad C = c_w c_h,

    the area of the smallest enclosing box (see the module docstring).  Values lie in [0, 2):
    disjoint boxes still get a gradient that pulls them together.

    Gradient: that of :func:`iou_loss`, plus :math:`\partial\ell/\partial C =
    (U + \epsilon)/(C + \epsilon)^2` and :math:`\partial\ell/\partial U = -1/(C + \epsilon)`,
    carried to the corners through the ``min``/``max`` of the enclosing box.

    Args:
      input: predicted boxes, shape ``(..., 4)``, in ``box_format``.
      target: target boxes of ``input``'s shape (floating, or integer coordinates).
      box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
      eps: :math:`\epsilon \ge 0` added to the denominators (default 1e-7).
      reduction: ``"none"`` (default, shape ``(...)``), ``"mean"`` or ``"sum"``.
      where: optional boolean mask over the per-box losses ``(...)``.

    Example: ``giou_loss([0, 0, 2, 2], [1, 1, 3, 3])``: :math:`I = 1, U = 7, C = 9`, so
    :math:`1 - 1/7 + 2/9 \approx 1.0794`.

    Equivalent: ``torchvision.ops.generalized_box_iou_loss(input, target, reduction, eps)``
    (xyxy boxes); Keras-CV ``GIoULoss``.
    """
    return _box_loss(
        input, target, kind="giou", box_format=box_format, eps=eps, reduction=reduction, where=where, wrt=wrt
    )


@catalogued(
    family="boxes",
    input_space="boxes",
    formula="1 - IoU + rho^2 / (c_w^2 + c_h^2 + eps)",
    torch="torchvision.ops.distance_box_iou_loss",
)
@loss_function
def diou_loss(
    input: Array,
    target: Array,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "none",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Distance IoU loss (Zheng et al. 2020), as ``torchvision.ops.distance_box_iou_loss``:

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{\rho^2}{c_w^2 + c_h^2 + \epsilon},

    with :math:`\rho` the distance between the boxes' centers and :math:`c_w, c_h` the
    enclosing box's width and height (its squared diagonal; see the module docstring).

    Gradient: that of :func:`iou_loss`, plus :math:`2\,\Delta x / d^2` with respect to the
    center offset :math:`\Delta x = \bar x - \bar x^g` (and :math:`y`), and
    :math:`-2\rho^2 c_w / d^4` with respect to :math:`c_w` (and :math:`c_h`), where
    :math:`d^2 = c_w^2 + c_h^2 + \epsilon`.

    Args:
      input: predicted boxes, shape ``(..., 4)``, in ``box_format``.
      target: target boxes of ``input``'s shape (floating, or integer coordinates).
      box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
      eps: :math:`\epsilon \ge 0` added to the denominators (default 1e-7).
      reduction: ``"none"`` (default, shape ``(...)``), ``"mean"`` or ``"sum"``.
      where: optional boolean mask over the per-box losses ``(...)``.

    Example: ``diou_loss([0, 0, 2, 2], [1, 1, 3, 3])``: :math:`\rho^2 = 2, d^2 = 18`, so
    :math:`1 - 1/7 + 1/9 \approx 0.9683`.

    Equivalent: ``torchvision.ops.distance_box_iou_loss(input, target, reduction, eps)``
    (xyxy boxes).
    """
    return _box_loss(
        input, target, kind="diou", box_format=box_format, eps=eps, reduction=reduction, where=where, wrt=wrt
    )


@catalogued(
    family="boxes",
    input_space="boxes",
    formula="DIoU loss + alpha v, v = 4/pi^2 (atan(w_g/h_g) - atan(w/h))^2",
    torch="torchvision.ops.complete_box_iou_loss",
)
@loss_function
def ciou_loss(
    input: Array,
    target: Array,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    detach_alpha: bool = True,
    reduction: Reduction = "none",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Complete IoU loss (Zheng et al. 2020), as ``torchvision.ops.complete_box_iou_loss``:

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{\rho^2}{c_w^2 + c_h^2 + \epsilon} + \alpha v,
        \qquad v = \frac{4}{\pi^2}\Big(\arctan\frac{w^g}{h^g} - \arctan\frac{w}{h}\Big)^2,
        \qquad \alpha = \frac{v}{1 - \mathrm{IoU} + v + \epsilon},

    :func:`diou_loss` plus an aspect-ratio term (:math:`w, h` a box's width and height).  The
    angle is computed as :math:`\operatorname{atan2}(w, h)`: the same number where
    :math:`h > 0`, :math:`\pi/2` for a zero height, and 0 for a point box (zero width and
    height), where torchvision's :math:`\arctan(0/0)` gives NaN.

    Gradient: torchvision computes :math:`\alpha` under ``torch.no_grad()``, so its gradient
    treats :math:`\alpha` as a constant; so does this one by default
    (``detach_alpha=True``): :math:`\partial\ell/\partial v = \alpha`, with
    :math:`\partial v/\partial w = -\tfrac{8}{\pi^2}\,\Delta\theta\; h/(w^2 + h^2)` and
    :math:`\partial v/\partial h = \tfrac{8}{\pi^2}\,\Delta\theta\; w/(w^2 + h^2)`,
    :math:`\Delta\theta = \arctan(w^g/h^g) - \arctan(w/h)`; torch autograd and ``jax.grad``
    through losskit give the same (``alpha`` is detached there too).  It is not the
    derivative of the value: finite differences differ.  ``detach_alpha=False``
    differentiates :math:`\alpha` too (:math:`\partial(\alpha v)/\partial v = \alpha(2 -
    \alpha)`, :math:`\partial(\alpha v)/\partial\,\mathrm{IoU} = \alpha^2`), the true
    gradient of the value.

    Args:
      input: predicted boxes, shape ``(..., 4)``, in ``box_format``.
      target: target boxes of ``input``'s shape (floating, or integer coordinates).
      box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
      eps: :math:`\epsilon \ge 0` added to the denominators (default 1e-7).
      reduction: ``"none"`` (default, shape ``(...)``), ``"mean"`` or ``"sum"``.
      where: optional boolean mask over the per-box losses ``(...)``.
      detach_alpha: treat :math:`\alpha` as a constant in the gradient, as torchvision
        does (default True).

    Example: ``ciou_loss([0, 0, 2, 2], [1, 1, 4, 3])``: :math:`I = 1, U = 9`, center offset
    :math:`(1.5, 1)`, enclosing box :math:`4 \times 3`, so
    :math:`1 - 1/9 + 3.25/25 + \alpha v \approx 1.0192` with :math:`v \approx 0.0158`,
    :math:`\alpha \approx 0.0175`.

    Equivalent: ``torchvision.ops.complete_box_iou_loss(input, target, reduction, eps)``
    (xyxy boxes; the same value and the same gradient); Keras-CV ``CIoULoss``.
    """
    if not isinstance(detach_alpha, bool):
        raise TypeError(f"detach_alpha must be a bool; got {type(detach_alpha).__name__}")
    return _box_loss(
        input,
        target,
        kind="ciou",
        box_format=box_format,
        eps=eps,
        reduction=reduction,
        where=where,
        wrt=wrt,
        detach_alpha=detach_alpha,
    )


@catalogued(
    family="boxes",
    input_space="boxes",
    formula="DIoU loss + (w - w_g)^2 / (c_w^2 + eps) + (h - h_g)^2 / (c_h^2 + eps)",
    torch=None,
)
@loss_function
def eiou_loss(
    input: Array,
    target: Array,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "none",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Efficient IoU loss (Zhang et al. 2022, "Focal and Efficient IOU Loss for Accurate
    Bounding Box Regression", Neurocomputing 506):

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{\rho^2}{c_w^2 + c_h^2 + \epsilon}
        + \frac{(w - w^g)^2}{c_w^2 + \epsilon} + \frac{(h - h^g)^2}{c_h^2 + \epsilon},

    :func:`diou_loss` (torchvision's ``_diou_iou_loss``) plus the differences of the widths
    and of the heights over the enclosing box's squared width and height, instead of CIoU's
    aspect-ratio term.  ``eps`` is added to each denominator, as torchvision does for the
    diagonal.

    Gradient: that of :func:`diou_loss`, plus :math:`\pm 2(w - w^g)/(c_w^2 + \epsilon)` with
    respect to the two widths and :math:`-2 c_w (w - w^g)^2/(c_w^2 + \epsilon)^2` with
    respect to :math:`c_w` (and the same for the heights).

    Args:
      input: predicted boxes, shape ``(..., 4)``, in ``box_format``.
      target: target boxes of ``input``'s shape (floating, or integer coordinates).
      box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
      eps: :math:`\epsilon \ge 0` added to the denominators (default 1e-7).
      reduction: ``"none"`` (default, shape ``(...)``), ``"mean"`` or ``"sum"``.
      where: optional boolean mask over the per-box losses ``(...)``.

    Example: ``eiou_loss([0, 0, 2, 2], [1, 1, 4, 3])``: :math:`1 - 1/9 + 3.25/25 + 1/16
    \approx 1.0814`.

    Equivalent: none in PyTorch, torchvision or Optax (the paper's formula).
    """
    return _box_loss(
        input, target, kind="eiou", box_format=box_format, eps=eps, reduction=reduction, where=where, wrt=wrt
    )
