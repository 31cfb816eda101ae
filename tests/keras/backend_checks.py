"""The checks of ``losskit.keras`` on one Keras backend, run as ``python -m
tests.keras.backend_checks jax|torch`` (the backend is chosen before Keras is imported, so each
runs in its own process; ``tests/keras/test_keras.py`` starts them).  Prints one line per check
and ``ok`` at the end; any failure raises."""

from __future__ import annotations

import inspect
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import losskit as lk  # noqa: E402
import losskit.keras as lkk  # noqa: E402

RNG = np.random.default_rng(0)
F32 = "float32"


def close(ours, theirs, what, rtol=2e-5, atol=1e-6):
    ours = np.asarray(keras.ops.convert_to_numpy(ours), dtype=np.float64)
    theirs = np.asarray(keras.ops.convert_to_numpy(theirs) if not isinstance(theirs, float) else theirs)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)
    print("ok", what)


def probs(shape):
    p = RNG.uniform(0.05, 1.0, shape)
    return (p / p.sum(-1, keepdims=True)).astype(F32)


def one_hot(labels, c):
    return np.eye(c, dtype=F32)[labels]


# -- equal to Keras's own losses -------------------------------------------------------------------

x = RNG.normal(size=(8, 5)).astype(F32)
y = RNG.normal(size=(8, 5)).astype(F32)
pos = RNG.uniform(0.1, 3.0, (8, 5)).astype(F32)
pos_t = RNG.uniform(0.1, 3.0, (8, 5)).astype(F32)
labels = RNG.integers(0, 5, 8)
binary = RNG.integers(0, 2, (8, 5)).astype(F32)
signs = 2 * binary - 1
p, q = probs((8, 5)), probs((8, 5))
w = RNG.uniform(0.2, 2.0, 8).astype(F32)

# (what, losskit.keras loss, Keras loss, y_true, y_pred for losskit, y_pred for Keras[, y_true
# for Keras])
SAME = [
    ("MSE", lkk.MSE(), keras.losses.MeanSquaredError(), y, x, x),
    ("MAE", lkk.MAE(), keras.losses.MeanAbsoluteError(), y, x, x),
    ("MAPE", lkk.MAPE(), keras.losses.MeanAbsolutePercentageError(), y, x, x),
    ("MSLE", lkk.MSLE(), keras.losses.MeanSquaredLogarithmicError(), pos_t, pos, pos),
    ("Huber", lkk.Huber(delta=0.7), keras.losses.Huber(delta=0.7), y, x, x),
    ("LogCosh", lkk.LogCosh(), keras.losses.LogCosh(), y, x, x),
    # Keras's Poisson is y_pred - y_true log(y_pred + 1e-7): poisson_nll of rates
    ("Poisson", lkk.PoissonNLL(log_input=False, eps=1e-7), keras.losses.Poisson(), pos_t, pos, pos),
    ("BCE", lkk.BinaryCrossEntropy(), keras.losses.BinaryCrossentropy(), binary, p, p),
    (
        "BCE logits",
        lkk.BinaryCrossEntropyWithLogits(),
        keras.losses.BinaryCrossentropy(from_logits=True),
        binary,
        x,
        x,
    ),
    (
        "sparse CE",
        lkk.CrossEntropy(),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        labels,
        x,
        x,
    ),
    (
        "sparse CE (N, 1) labels",
        lkk.CrossEntropy(),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        labels[:, None],
        x,
        x,
    ),
    (
        "categorical CE, smoothing",
        lkk.CrossEntropy(label_smoothing=0.1),
        keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        one_hot(labels, 5),
        x,
        x,
    ),
    ("soft-label CE", lkk.CrossEntropy(), keras.losses.CategoricalCrossentropy(from_logits=True), q, x, x),
    (
        "sigmoid focal",
        lkk.SigmoidFocal(),
        keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True),
        binary,
        x,
        x,
    ),
    (
        "softmax focal",
        lkk.SoftmaxFocal(),
        keras.losses.CategoricalFocalCrossentropy(alpha=1.0, from_logits=True),
        labels,  # softmax_focal takes class indices
        x,
        x,
        one_hot(labels, 5),
    ),
    (
        "generalized CE",
        lkk.GeneralizedCrossEntropy(),
        keras.losses.CategoricalGeneralizedCrossEntropy(),
        labels,
        p,
        p,
    ),
    ("Hinge", lkk.Hinge(), keras.losses.Hinge(), signs, x, x),
    ("SquaredHinge", lkk.SquaredHinge(), keras.losses.SquaredHinge(), signs, x, x),
    # losskit's kl_div takes log-probabilities (PyTorch's convention), Keras's probabilities
    ("KLDivergence", lkk.KLDiv(), keras.losses.KLDivergence(), q, np.log(p), p),
    # Keras's Dice and Tversky (axis=1) give one ratio per sample over a binary map: losskit's
    # over a class axis of size 1; Keras's Tversky weighs false negatives by alpha (its
    # "fp" is sum(y_true (1 - y_pred))), losskit's by beta; Keras adds 1e-7 to the denominator
    ("Dice", lkk.Dice(smooth=0.0), keras.losses.Dice(axis=1), binary[..., None], p[..., None], p, binary),
    (
        "Tversky",
        lkk.Tversky(alpha=0.7, beta=0.3, smooth=0.0),
        keras.losses.Tversky(alpha=0.3, beta=0.7, axis=1),
        binary[..., None],
        p[..., None],
        p,
        binary,
    ),
]

for what, ours, theirs, y_true, y_pred, keras_pred, *keras_true in SAME:
    keras_true = keras_true[0] if keras_true else y_true
    close(ours(y_true, y_pred), theirs(keras_true, keras_pred), what)
    weighted = theirs(keras_true, keras_pred, sample_weight=w)
    close(ours(y_true, y_pred, sample_weight=w), weighted, what + ", weighted")
    assert lk.lookup(ours.catalog_name).keras, ours.catalog_name

# Keras's CosineSimilarity is -cos; losskit's cosine_distance 1 - cos
close(lkk.CosineDistance()(y, x), 1.0 + float(keras.losses.CosineSimilarity()(y, x)), "CosineSimilarity + 1")

# -- equal to losskit's own function ----------------------------------------------------------------

close(lkk.CrossEntropy()(labels, x), float(lk.cross_entropy(x.astype(np.float64), labels)), "CE = losskit")
logp64 = np.log(p).astype(np.float64)
close(lkk.KLDiv()(q, np.log(p)), float(lk.kl_div(logp64, q.astype(np.float64))), "KL = losskit")
close(lkk.MSE()(y, x), float(lk.mse(x.astype(np.float64), y.astype(np.float64))), "MSE = losskit")
per_sample = lk.huber(x.astype(np.float64), y.astype(np.float64), reduction="none").mean(-1)
close(lkk.Huber(reduction="none")(y, x), per_sample, "reduction none: per sample")
close(lkk.Huber(reduction=None)(y, x), per_sample, "reduction None: per sample")
close(lkk.Huber(reduction="sum")(y, x, sample_weight=w), float((per_sample * w).sum()), "sum, weighted")
close(
    lkk.Huber(reduction="mean_with_sample_weight")(y, x, sample_weight=w),
    float((per_sample * w).sum() / w.sum()),
    "mean_with_sample_weight",
)
# several targets: a tuple in the function's order
a, pp, n = (RNG.normal(size=(6, 4)).astype(F32) for _ in range(3))
triplet = float(lk.triplet_margin(*(v.astype(np.float64) for v in (a, pp, n))))
close(lkk.TripletMargin()((pp, n), a), triplet, "triplet")
try:
    lkk.TripletMargin()(pp, a)
except ValueError as error:
    assert "tuple of 2 arrays" in str(error)
    print("ok triplet without a tuple refused")
else:
    raise AssertionError("a single y_true was accepted by TripletMargin")
# class weights are options, and go through get_config as lists
cw = lkk.CrossEntropy(weight=np.array([1.0, 2.0, 0.5, 1.0, 3.0]))
assert cw.get_config()["weight"] == [1.0, 2.0, 0.5, 1.0, 3.0]
assert lkk.CrossEntropy.from_config(cw.get_config()).get_config() == cw.get_config()

# -- every class: the config round trip, and its numbers on the shared cases ------------------------
from tests.support.cases import ALL_CASES  # noqa: E402

# Keras's mean of per-sample values is not losskit's default mean for these (losskit.keras.base)
PER_SAMPLE_MEANS = {
    "NTXent", "ProxyAnchor", "ContrastivePairs", "LiftedStructure", "NPair", "MinedTripletMargin",
    "CTC",
}  # fmt: skip
checked, differ = set(), set()
for case in ALL_CASES:
    cls = lkk.KERAS_LOSSES.get(case.fn.__name__)
    if cls is None or cls in checked or "jax" not in case.backends:
        continue
    args, kwargs = case.make_args(np.random.default_rng(0))
    if "where" in kwargs or any(k in kwargs for k in ("normalizer", "weights", "weight")):
        continue
    n_in = 1 + cls.num_targets
    if cls.num_targets == 0:
        continue
    inputs, positional_options = args[:n_in], args[n_in:]
    names = [p for p in inspect.signature(case.fn).parameters][n_in : n_in + len(positional_options)]
    options = {**dict(zip(names, positional_options)), **kwargs}
    if any(isinstance(v, np.ndarray) and k not in cls.array_options for k, v in options.items()):
        continue
    loss = cls(**options)
    again = cls.from_config(loss.get_config())
    assert again.get_config() == loss.get_config(), cls.__name__
    y_pred = inputs[0].astype(F32) if inputs[0].dtype.kind == "f" else inputs[0]
    targets = tuple(
        t.astype(F32) if isinstance(t, np.ndarray) and t.dtype.kind == "f" else t for t in inputs[1:]
    )
    y_true = targets[0] if cls.num_targets == 1 else targets
    default = inspect.signature(case.fn).parameters["reduction"].default
    reduction = "batchmean" if default == "batchmean" else "mean"
    expected = case.fn(*inputs, reduction=reduction, **options)  # float64
    # the Keras value is the mean of per-sample means; losskit's default is the same mean
    # when every sample has as many elements (no ignored targets)
    value = float(again(y_true, y_pred))
    if cls.__name__ in PER_SAMPLE_MEANS:
        per = np.asarray(case.fn(*inputs, reduction="none", **options))
        expected = per.reshape(per.shape[0], -1).mean(axis=1).mean() if per.ndim > 1 else per.mean()
        differ.add(cls.__name__)
    close(value, np.asarray(expected), f"{cls.__name__} = losskit.{case.fn.__name__}", rtol=2e-4, atol=1e-5)
    checked.add(cls)
print(len(checked), "classes checked against losskit")
assert differ == PER_SAMPLE_MEANS, differ
assert len(checked) >= 60, len(checked)

# -- compile, fit, save, load ----------------------------------------------------------------------

keras.utils.set_random_seed(0)
data = RNG.normal(size=(64, 4)).astype(F32)
classes = (data[:, 0] > 0).astype("int32") + (data[:, 1] > 0).astype("int32")
regress = (data @ RNG.normal(size=(4, 2))).astype(F32)
with tempfile.TemporaryDirectory() as tmp:
    for loss, target, units in [
        (lkk.CrossEntropy(label_smoothing=0.05), classes, 3),
        (lkk.Huber(delta=0.5), regress, 2),
        (lkk.SigmoidFocal(alpha=0.5, gamma=1.0), (regress > 0).astype(F32), 2),
    ]:
        layers = [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(units)]
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
        history = model.fit(data, target, epochs=3, batch_size=16, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], history.history
        path = os.path.join(tmp, type(loss).__name__ + ".keras")
        model.save(path)
        restored = keras.models.load_model(path)
        assert type(restored.loss) is type(loss), type(restored.loss)
        assert restored.loss.get_config() == loss.get_config()
        prediction = model.predict(data, verbose=0)
        what = f"{type(loss).__name__} saved and loaded"
        close(restored.loss(target, prediction), loss(target, prediction), what)
        close(restored.evaluate(data, target, verbose=0), model.evaluate(data, target, verbose=0), "evaluate")

print("ok")
