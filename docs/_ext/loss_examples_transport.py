"""Worked examples of the entropic optimal-transport losses (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "sinkhorn": """\
x = np.array([[0.0], [1.0]])  # two points on a line, half the mass each
y = np.array([[0.5]])  # one point between them
# every plan moves half the mass a distance 0.5: (0.5 ** 2) = 0.25, with no entropic term
print(round(float(lk.sinkhorn(x, y, epsilon=0.1)), 4))
rng = np.random.default_rng(0)
x, y = rng.uniform(size=(8, 2)), rng.uniform(size=(6, 2)) + 0.5
print(round(float(lk.sinkhorn(x, y, epsilon=0.1, n_iters=200)), 4))
print(round(float(lk.sinkhorn(x, x, epsilon=0.1, n_iters=200)), 4))  # not 0 at x == y
""",
    "sinkhorn_divergence": """\
rng = np.random.default_rng(0)
x, y = rng.uniform(size=(8, 2)), rng.uniform(size=(6, 2)) + 0.5
print(round(float(lk.sinkhorn_divergence(x, y, epsilon=0.1, n_iters=300)), 4))
print(float(lk.sinkhorn_divergence(x, x)))  # exactly 0 for identical clouds
# y lies up and to the right: the gradient of x points away from it, so descent moves x over
_, g = lk.value_and_grad(lk.sinkhorn_divergence)(x, y, epsilon=0.1, n_iters=300)
print(g.shape, np.round(g.sum(axis=0), 4))
""",
    "sinkhorn_histograms": """\
a = np.array([1.0, 0.0])  # all the mass in the first bin
b = np.array([0.0, 1.0])  # all of it in the second
cost = np.array([[0.0, 1.0], [1.0, 0.0]])
print(round(float(lk.sinkhorn_histograms(a, b, cost)), 4))  # the only plan moves it all at cost 1
rng = np.random.default_rng(0)
a, b = rng.uniform(size=5), rng.uniform(size=4)  # normalised inside
cost = np.abs(np.arange(5.0)[:, None] / 4 - np.arange(4.0)[None, :] / 3)
value, plan = lk.value_and_grad(lk.sinkhorn_histograms, argnums=2)(a, b, cost, n_iters=200)
print(round(float(value), 4), round(float(plan.sum()), 4))  # the cost's gradient is the plan
""",
}
