"""Worked examples of the bounding-box losses (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "iou_loss": """\
predicted = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])  # x1, y1, x2, y2
target = np.array([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0]])
print(lk.iou_loss(predicted, target).round(4))  # reduction="none" by default
print(round(float(lk.iou_loss(predicted, target, reduction="mean")), 4))
""",
    "giou_loss": """\
predicted = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
target = np.array([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0]])
print(lk.giou_loss(predicted, target).round(4))  # disjoint boxes score above 1
""",
    "diou_loss": """\
predicted = np.array([[0.0, 0.0, 2.0, 2.0]])
target = np.array([[1.0, 1.0, 3.0, 3.0]])
print(round(float(lk.diou_loss(predicted, target, reduction="sum")), 4))
""",
    "ciou_loss": """\
predicted = np.array([[1.0, 1.0, 2.0, 2.0]])  # cx, cy, w, h
target = np.array([[2.5, 2.0, 3.0, 2.0]])
print(round(float(lk.ciou_loss(predicted, target, box_format="cxcywh", reduction="sum")), 4))
""",
    "eiou_loss": """\
predicted = np.array([[0.0, 0.0, 2.0, 2.0]])  # x, y, w, h
target = np.array([[1.0, 1.0, 3.0, 2.0]])
print(round(float(lk.eiou_loss(predicted, target, box_format="xywh", reduction="sum")), 4))
""",
}
