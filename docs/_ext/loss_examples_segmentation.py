"""Worked examples of the added segmentation losses (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "jaccard": """\
labels = np.array([[[0, 1], [1, 2]]])  # one 2x2 image, three classes
probabilities = np.array([[[[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]],
                           [[0.1, 0.6, 0.3], [0.1, 0.2, 0.7]]]])  # (N, H, W, C)
print(lk.jaccard(probabilities, labels, reduction="none").round(4))  # (N, C)
print(round(float(lk.jaccard(probabilities, labels)), 4))
print(round(float(lk.jaccard(probabilities, labels, batch=True)), 4))
""",
    "generalized_dice": """\
labels = np.array([[0, 0, 0, 0, 0, 1]])  # a rare class: 1 pixel in 6
probabilities = np.array([[[0.9, 0.1], [0.8, 0.2], [0.9, 0.1], [0.7, 0.3], [0.9, 0.1], [0.4, 0.6]]])
print(round(float(lk.generalized_dice(probabilities, labels)), 4))  # weights 1 / G^2
print(round(float(lk.generalized_dice(probabilities, labels, weight_type="uniform")), 4))
""",
    "lovasz_hinge": """\
logits = np.array([[[2.0, -0.5], [0.3, -2.0]]])  # one 2x2 image, foreground scores
labels = np.array([[[1, 1], [0, 0]]])
print(round(float(lk.lovasz_hinge(logits, labels)), 4))
""",
    "lovasz_softmax": """\
labels = np.array([[0, 1, 2, 1]])  # one image of four pixels
probabilities = np.array([[[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]]])
print(round(float(lk.lovasz_softmax(probabilities, labels)), 4))
print(round(float(lk.lovasz_softmax(probabilities, labels, classes=[1])), 4))
""",
}
