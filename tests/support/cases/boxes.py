"""Cases for the box losses: torchvision's published formulas (``generalized_box_iou_loss``,
``distance_box_iou_loss``, ``complete_box_iou_loss``, their helpers ``_loss_inter_union`` and
``_diou_iou_loss``) written again here in PyTorch, float64 (torchvision does not import beside
this torch), and the EIoU paper's formula on top of the DIoU one.  Torch autograd through them
gives the reference gradients."""

from __future__ import annotations

import math

import numpy as np

import losskit as lk

from . import Case


def torch_to_xyxy(boxes, box_format):
    """torchvision's ``box_convert(boxes, box_format, "xyxy")``."""
    import torch

    a, b, c, d = boxes.unbind(-1)
    if box_format == "xywh":
        return torch.stack([a, b, a + c, b + d], dim=-1)
    if box_format == "cxcywh":
        return torch.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], dim=-1)
    return boxes


def torch_box_loss(kind, boxes1, boxes2, *, box_format="xyxy", eps=1e-7, detach_alpha=True):
    """Per-box loss of ``kind`` ("iou", "giou", "diou", "ciou", "eiou") from the formulas."""
    import torch

    boxes1, boxes2 = torch_to_xyxy(boxes1, box_format), torch_to_xyxy(boxes2, box_format)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    # intersection: counted only where both sides are positive (torchvision's mask)
    iw = torch.minimum(x2, x2g) - torch.maximum(x1, x1g)
    ih = torch.minimum(y2, y2g) - torch.maximum(y1, y1g)
    inter = torch.where((iw > 0) & (ih > 0), iw * ih, torch.zeros_like(iw))
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    if kind == "iou":
        return 1 - iou
    cw = torch.maximum(x2, x2g) - torch.minimum(x1, x1g)
    ch = torch.maximum(y2, y2g) - torch.minimum(y1, y1g)
    if kind == "giou":
        area_c = cw * ch
        return 1 - (iou - (area_c - union) / (area_c + eps))
    diagonal2 = cw**2 + ch**2 + eps
    centers2 = ((x1 + x2) / 2 - (x1g + x2g) / 2) ** 2 + ((y1 + y2) / 2 - (y1g + y2g) / 2) ** 2
    diou = 1 - iou + centers2 / diagonal2
    if kind == "diou":
        return diou
    w, h, wg, hg = x2 - x1, y2 - y1, x2g - x1g, y2g - y1g
    if kind == "eiou":
        return diou + (w - wg) ** 2 / (cw**2 + eps) + (h - hg) ** 2 / (ch**2 + eps)
    v = (4 / math.pi**2) * (torch.atan(wg / hg) - torch.atan(w / h)) ** 2
    if detach_alpha:
        with torch.no_grad():
            alpha = v / (1 - iou + v + eps)
    else:
        alpha = v / (1 - iou + v + eps)
    return diou + alpha * v


def _reduce(per, where, reduction):
    import torch

    if where is not None:
        per = torch.where(where, per, torch.zeros_like(per))
        if reduction == "mean":
            count = torch.broadcast_to(where, per.shape).sum()
            return per.sum() / count
    return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per


def torch_reference(kind):
    def reference(a, k, r):
        per = torch_box_loss(
            kind,
            *a,
            box_format=k.get("box_format", "xyxy"),
            eps=k.get("eps", 1e-7),
            detach_alpha=k.get("detach_alpha", True),
        )
        return _reduce(per, k.get("where"), r)

    return reference


def random_xyxy(rng, shape, low=0.0, high=10.0, min_size=0.5, max_size=5.0):
    """Valid corner boxes of the given batch shape: corners in [low, high], sizes in range."""
    corner = rng.uniform(low, high, size=shape + (2,))
    size = rng.uniform(min_size, max_size, size=shape + (2,))
    return np.concatenate([corner, corner + size], axis=-1)


def from_xyxy(boxes, box_format):
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    if box_format == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    if box_format == "cxcywh":
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)
    return boxes


def _box_args(shape=(6,), box_format="xyxy", masked=False, **options):
    """Predictions near their targets (mostly overlapping, some disjoint)."""

    def make(rng):
        target = random_xyxy(rng, shape)
        shift = rng.normal(scale=1.5, size=shape + (2,))
        pred = random_xyxy(rng, shape)
        # half the predictions: the target moved and resized, overlapping it mostly
        near = np.concatenate([target[..., :2] + shift, target[..., 2:] + shift], axis=-1)
        near[..., 2:] += rng.uniform(-0.3, 0.8, size=shape + (2,))
        pick = (np.arange(int(np.prod(shape))).reshape(shape) % 2 == 0)[..., None]
        pred = np.where(pick, near, pred)
        kwargs = dict(options)
        if box_format != "xyxy":
            kwargs["box_format"] = box_format
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where.reshape(-1)[0] = False
            kwargs["where"] = where
        return (from_xyxy(pred, box_format), from_xyxy(target, box_format)), kwargs

    return make


def _perfect(box_format="xyxy"):
    def make(rng):
        boxes = from_xyxy(random_xyxy(rng, (5,)), box_format)
        kwargs = {"eps": 0.0}  # with eps, identical boxes score eps / (area + eps)
        if box_format != "xyxy":
            kwargs["box_format"] = box_format
        return (boxes, boxes.copy()), kwargs

    return make


def _cases(kind, fn, **ciou):
    return [
        Case(
            id=f"{kind}_loss",
            fn=fn,
            make_args=_box_args(**ciou),
            reference=torch_reference(kind),
            grad_argnums=(0, 1),
            perfect=_perfect(),
        ),
        Case(
            id=f"{kind}_loss-xywh-batch",
            fn=fn,
            make_args=_box_args(shape=(2, 3), box_format="xywh", **ciou),
            reference=torch_reference(kind),
            grad_argnums=(0, 1),
            perfect=_perfect("xywh"),
        ),
        Case(
            id=f"{kind}_loss-cxcywh-where-eps",
            fn=fn,
            make_args=_box_args(shape=(7,), box_format="cxcywh", masked=True, eps=1e-3, **ciou),
            reference=torch_reference(kind),
            perfect=_perfect("cxcywh"),
        ),
    ]


CASES = [
    *_cases("iou", lk.iou_loss),
    *_cases("giou", lk.giou_loss),
    *_cases("diou", lk.diou_loss),
    # the generic gradient checks compare with finite differences: alpha differentiated too
    # (torchvision's detached alpha is checked in tests/losses/test_boxes.py)
    *_cases("ciou", lk.ciou_loss, detach_alpha=False),
    *_cases("eiou", lk.eiou_loss),
]
