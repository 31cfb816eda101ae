"""A small worked example for every catalogued loss, run while the site is built.

Each entry is complete Python: it imports what it uses, builds its inputs (fixed numbers, or a
seeded generator) and prints the loss.  :mod:`catalog_pages` executes it and shows the code with
the printed output, so the number on the page is the number the code gives.
"""

from __future__ import annotations

_HEAD = "import numpy as np\nimport losskit as lk\n\n"

EXAMPLES: dict[str, str] = {
    # regression
    "gaussian_nll": """\
mean = np.array([1.0, 2.0, 3.0])
target = np.array([1.5, 2.0, 2.0])
var = np.array([0.5, 1.0, 2.0])
print(round(float(lk.gaussian_nll(mean, target, var)), 4))
""",
    "huber": """\
prediction = np.array([0.0, 0.5, 3.0])
target = np.array([0.0, 0.0, 0.0])
print(lk.huber(prediction, target, delta=1.0, reduction="none"))
print(round(float(lk.huber(prediction, target, delta=1.0)), 4))
""",
    "log_cosh": """\
prediction = np.array([2.5, 3.1, 4.8])
target = np.array([2.0, 3.0, 5.0])
print(round(float(lk.log_cosh(prediction, target)), 4))
""",
    "mae": """\
prediction = np.array([2.5, 3.1, 4.8])
target = np.array([2.0, 3.0, 5.0])
print(round(float(lk.mae(prediction, target)), 4))
""",
    "mape": """\
prediction = np.array([110.0, 45.0, 20.0])
target = np.array([100.0, 50.0, 25.0])
print(round(float(lk.mape(prediction, target)), 4))  # percent
""",
    "mse": """\
prediction = np.array([2.5, 3.1, 4.8])
target = np.array([2.0, 3.0, 5.0])
print(round(float(lk.mse(prediction, target)), 4))
""",
    "msle": """\
prediction = np.array([2.5, 3.1, 4.8])
target = np.array([2.0, 3.0, 5.0])
print(round(float(lk.msle(prediction, target)), 4))
""",
    "poisson_nll": """\
log_rate = np.log(np.array([1.0, 2.0, 4.0]))
counts = np.array([0.0, 3.0, 4.0])
print(round(float(lk.poisson_nll(log_rate, counts)), 4))
""",
    "quantile": """\
prediction = np.array([1.0, 2.0, 3.0])
target = np.array([2.0, 2.0, 2.0])
print(round(float(lk.quantile(prediction, target, q=0.9)), 4))
""",
    "smooth_l1": """\
prediction = np.array([0.0, 0.5, 3.0])
target = np.array([0.0, 0.0, 0.0])
print(round(float(lk.smooth_l1(prediction, target, beta=1.0)), 4))
""",
    "tweedie": """\
mean = np.array([1.0, 2.0, 0.5])
target = np.array([0.0, 3.0, 1.0])
print(round(float(lk.tweedie(mean, target, power=1.5)), 4))
""",
    # classification
    "binary_brier": """\
probability = np.array([0.9, 0.2, 0.6])
label = np.array([1.0, 0.0, 0.0])
print(round(float(lk.binary_brier(probability, label)), 4))
""",
    "binary_cross_entropy": """\
probability = np.array([0.9, 0.2, 0.6])
label = np.array([1.0, 0.0, 0.0])
print(round(float(lk.binary_cross_entropy(probability, label)), 4))
""",
    "binary_cross_entropy_with_logits": """\
logit = np.array([2.0, -1.0, 0.5])
label = np.array([1.0, 0.0, 0.0])
print(round(float(lk.binary_cross_entropy_with_logits(logit, label)), 4))
print(round(float(lk.binary_cross_entropy_with_logits(logit, label, pos_weight=np.array(3.0))), 4))
""",
    "brier": """\
probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
one_hot = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
print(round(float(lk.brier(probabilities, one_hot)), 4))
""",
    "cross_entropy": """\
logits = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
target = np.array([0, 2])
print(lk.cross_entropy(logits, target, reduction="none").round(4))
print(round(float(lk.cross_entropy(logits, target)), 4))
print(round(float(lk.cross_entropy(logits, target, label_smoothing=0.1)), 4))
""",
    "generalized_cross_entropy": """\
probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
target = np.array([0, 1])
print(round(float(lk.generalized_cross_entropy(probabilities, target, q=0.7)), 4))
""",
    "hinge": """\
score = np.array([2.0, 0.3, -0.5])
label = np.array([1.0, 1.0, 1.0])
print(round(float(lk.hinge(score, label)), 4))
""",
    "hinge_embedding": """\
distance = np.array([0.3, 0.4, 2.0])
label = np.array([1.0, -1.0, -1.0])
print(round(float(lk.hinge_embedding(distance, label)), 4))
""",
    "linear_cross_entropy": """\
rng = np.random.default_rng(0)
hidden = rng.normal(size=(4, 8))
weight = rng.normal(size=(10, 8)) / np.sqrt(8)
target = np.array([1, 5, 9, 0])
print(round(float(lk.linear_cross_entropy(hidden, weight, target)), 4))
print(round(float(lk.cross_entropy(hidden @ weight.T, target)), 4))  # the same, unfused
""",
    "multi_margin": """\
scores = np.array([[0.1, 0.2, 0.4, 0.8]])
target = np.array([3])
print(round(float(lk.multi_margin(scores, target)), 4))
""",
    "multiclass_hinge": """\
scores = np.array([[0.1, 0.2, 0.4, 0.8]])
target = np.array([3])
print(round(float(lk.multiclass_hinge(scores, target)), 4))
""",
    "multiclass_perceptron": """\
scores = np.array([[0.1, 0.9, 0.4], [1.0, 0.2, 0.3]])
target = np.array([2, 0])
print(round(float(lk.multiclass_perceptron(scores, target)), 4))
""",
    "multilabel_margin": """\
scores = np.array([[0.1, 0.2, 0.4, 0.8]])
target = np.array([[3, 0, -1, 1]])  # classes 3 and 0; -1 ends the list
print(round(float(lk.multilabel_margin(scores, target)), 4))
""",
    "multilabel_soft_margin": """\
logits = np.array([[2.0, -1.0, 0.5]])
labels = np.array([[1.0, 0.0, 1.0]])
print(round(float(lk.multilabel_soft_margin(logits, labels)), 4))
""",
    "nll": """\
log_probabilities = np.log(np.array([[0.7, 0.2, 0.1]]))
print(round(float(lk.nll(log_probabilities, np.array([0]))), 4))
""",
    "perceptron": """\
score = np.array([2.0, 0.3, -0.5])
label = np.array([1.0, -1.0, 1.0])
print(round(float(lk.perceptron(score, label)), 4))
""",
    "poly1_cross_entropy": """\
logits = np.array([[2.0, 1.0, 0.1]])
target = np.array([0])
print(round(float(lk.poly1_cross_entropy(logits, target, epsilon=1.0)), 4))
""",
    "sigmoid_focal": """\
logit = np.array([3.0, -2.0, 0.5])
label = np.array([1.0, 0.0, 1.0])
print(round(float(lk.sigmoid_focal(logit, label, alpha=0.25, gamma=2.0)), 4))
""",
    "soft_margin": """\
score = np.array([2.0, 0.3, -0.5])
label = np.array([1.0, -1.0, 1.0])
print(round(float(lk.soft_margin(score, label)), 4))
""",
    "softmax_focal": """\
logits = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
target = np.array([0, 2])
print(round(float(lk.softmax_focal(logits, target, gamma=2.0)), 4))
""",
    "sparsemax_loss": """\
logits = np.array([[1.0, 0.8, 0.1]])
print(lk.sparsemax(logits).round(4))
print(round(float(lk.sparsemax_loss(logits, np.array([1]))), 4))
""",
    "squared_hinge": """\
score = np.array([2.0, 0.3, -0.5])
label = np.array([1.0, 1.0, 1.0])
print(round(float(lk.squared_hinge(score, label)), 4))
""",
    # divergences
    "distillation_kl": """\
student = np.array([[2.0, 1.0, 0.1]])
teacher = np.array([[3.0, 0.5, 0.0]])
print(round(float(lk.distillation_kl(student, teacher, temperature=2.0)), 4))
""",
    "generalized_kl": """\
log_p = np.log(np.array([[0.5, 0.3, 0.1]]))  # an unnormalised measure
q = np.array([[0.4, 0.4, 0.2]])
print(round(float(lk.generalized_kl(log_p, q)), 4))
""",
    "js_div": """\
log_p = np.log(np.array([[0.5, 0.3, 0.2]]))
q = np.array([[0.2, 0.3, 0.5]])
print(round(float(lk.js_div(log_p, q)), 4))
""",
    "kl_div": """\
log_p = np.log(np.array([[0.5, 0.3, 0.2]]))
q = np.array([[0.2, 0.3, 0.5]])
print(round(float(lk.kl_div(log_p, q)), 4))  # KL(q || p), 'batchmean'
""",
    # contrastive
    "circle": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(6, 4))
labels = np.array([0, 0, 1, 1, 2, 2])
print(round(float(lk.circle(embeddings, labels, m=0.25, gamma=32.0)), 4))
""",
    "cosine_distance": """\
x = np.array([[1.0, 0.0], [1.0, 1.0]])
y = np.array([[0.0, 1.0], [1.0, 1.0]])
print(lk.cosine_distance(x, y, reduction="none").round(4))
""",
    "cosine_embedding": """\
x1 = np.array([[1.0, 0.0], [1.0, 1.0]])
x2 = np.array([[1.0, 1.0], [1.0, 0.9]])
target = np.array([1.0, -1.0])
print(round(float(lk.cosine_embedding(x1, x2, target, margin=0.5)), 4))
""",
    "info_nce": """\
rng = np.random.default_rng(0)
query = rng.normal(size=(4, 8))
positive = query + 0.1 * rng.normal(size=(4, 8))
print(round(float(lk.info_nce(query, positive, temperature=0.1)), 4))
""",
    "ntxent": """\
rng = np.random.default_rng(0)
views = rng.normal(size=(4, 8))
embeddings = np.concatenate([views, views + 0.1 * rng.normal(size=(4, 8))])
labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
print(round(float(lk.ntxent(embeddings, labels, temperature=0.5)), 4))
""",
    "supcon": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(6, 4))
labels = np.array([0, 0, 1, 1, 2, 2])
print(round(float(lk.supcon(embeddings, labels, temperature=0.5)), 4))
""",
    "triplet_margin": """\
anchor = np.array([[0.0, 0.0]])
positive = np.array([[0.3, 0.4]])
negative = np.array([[1.0, 0.0]])
print(round(float(lk.triplet_margin(anchor, positive, negative, margin=1.0)), 4))
""",
    "triplet_margin_with_distance": """\
anchor = np.array([[0.0, 0.0]])
positive = np.array([[0.3, 0.4]])
negative = np.array([[1.0, 0.0]])


def manhattan(a, b):
    return np.sum(np.abs(a - b), axis=-1)


print(round(float(lk.triplet_margin_with_distance(
    anchor, positive, negative, distance_function=manhattan, margin=1.0)), 4))
""",
    # ranking
    "margin_ranking": """\
first = np.array([0.8, 0.2, 0.5])
second = np.array([0.3, 0.6, 0.5])
target = np.array([1.0, 1.0, -1.0])  # 1: first should rank higher
print(round(float(lk.margin_ranking(first, second, target, margin=0.1)), 4))
""",
    "ranking_softmax": """\
scores = np.array([[2.0, 1.0, 0.5, -1.0]])
relevance = np.array([[1.0, 0.0, 1.0, 0.0]])
print(round(float(lk.ranking_softmax(scores, relevance)), 4))
""",
    # segmentation
    "dice": """\
probabilities = np.array([[0.9, 0.8, 0.1, 0.2]])  # one sample, four pixels
mask = np.array([[1.0, 1.0, 0.0, 1.0]])
print(round(float(lk.dice(probabilities, mask)), 4))
""",
    "tversky": """\
probabilities = np.array([[0.9, 0.8, 0.1, 0.2]])
mask = np.array([[1.0, 1.0, 0.0, 1.0]])
print(round(float(lk.tversky(probabilities, mask, alpha=0.3, beta=0.7)), 4))
""",
    # sequence
    "ctc": """\
rng = np.random.default_rng(0)
log_probs = lk.log_softmax(rng.normal(size=(6, 1, 4)))  # (time, batch, classes), 0 is blank
targets = np.array([[1, 2, 2]])
print(round(float(lk.ctc(log_probs, targets, input_lengths=[6], target_lengths=[3])), 4))
""",
    # penalties
    "l1_penalty": """\
weights = np.array([[0.5, -1.0], [2.0, 0.0]])
bias = np.array([0.1, -0.1])
print(round(float(lk.l1_penalty(weights, bias, scale=0.01)), 4))
""",
    "l2_penalty": """\
weights = np.array([[0.5, -1.0], [2.0, 0.0]])
bias = np.array([0.1, -0.1])
print(round(float(lk.l2_penalty(weights, bias, scale=0.01)), 4))
""",
}


def _family_examples() -> None:
    """Merge the examples kept beside this file, one module per family
    (``loss_examples_<family>.py``, each with its own ``EXAMPLES``)."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).parent.glob("loss_examples_*.py")):
        extra = importlib.import_module(path.stem).EXAMPLES
        clash = set(extra) & set(EXAMPLES)
        if clash:
            raise ValueError(f"{path.name}: examples given twice: {sorted(clash)}")
        EXAMPLES.update(extra)


_family_examples()


def example(name: str) -> str:
    """The complete code of ``name``'s example, imports included."""
    return _HEAD + EXAMPLES[name]
