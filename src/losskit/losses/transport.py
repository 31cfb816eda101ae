r"""Entropic optimal transport between weighted point clouds: the Sinkhorn cost and the debiased
Sinkhorn divergence.

A point cloud is ``x`` of shape ``(n, d)`` with weights ``a`` of shape ``(n,)`` (uniform by
default), compared with ``y`` of shape ``(m, d)`` with weights ``b``.  Leading batch axes are
allowed: ``x`` ``(..., n, d)``, ``y`` ``(..., m, d)`` with the same batch shape, one loss per
batch element; ``a`` is ``(n,)`` (shared) or ``(..., n)``.  The weights need not sum to 1: they
are normalised, :math:`\bar a = a / \sum_i a_i`, so only relative weights matter.

The ground cost is :math:`C_{ij} = \lVert x_i - y_j\rVert_2^p` (``p=2``: squared Euclidean,
POT's ``metric="sqeuclidean"``; ``p=1``: Euclidean).  The entropic OT cost is

.. math::
    \mathrm{OT}_\varepsilon(a, b) = \min_{P \ge 0,\ P1 = \bar a,\ P^\top 1 = \bar b}
    \langle P, C\rangle + \varepsilon\,\mathrm{KL}(P \,\|\, \bar a \otimes \bar b)
    = \max_{f, g}\ \langle \bar a, f\rangle + \langle \bar b, g\rangle
      - \varepsilon \langle \bar a \otimes \bar b, e^{(f \oplus g - C)/\varepsilon} - 1\rangle,

computed by Sinkhorn's iterations on the dual potentials :math:`f, g` in the log domain (a
log-sum-exp per update, stable for any :math:`\varepsilon`):

.. math::
    g_j \leftarrow -\varepsilon \log \sum_i \bar a_i e^{(f_i - C_{ij})/\varepsilon}, \qquad
    f_i \leftarrow -\varepsilon \log \sum_j \bar b_j e^{(g_j - C_{ij})/\varepsilon}.

The budget is fixed: exactly ``n_iters`` iterations, never a data-dependent exit, so the loss
runs under ``jax.jit`` (one ``lax.scan``) and stays lazy on Dask.  The returned value is the
dual objective above at the final potentials, which equals the primal
:math:`\langle P, C\rangle + \varepsilon\,\mathrm{KL}(P\,\|\,\bar a \otimes \bar b)` with
:math:`P_{ij} = \bar a_i \bar b_j e^{(f_i + g_j - C_{ij})/\varepsilon}` once the iterations
have converged.

Gradients are the analytic envelope gradients (Danskin's theorem): the partial derivatives of
the dual objective at the final potentials, the potentials held fixed,

.. math::
    \frac{\partial}{\partial x_i} = \sum_j P_{ij}\,\partial_x C(x_i, y_j)
    \ \big(= 2 \textstyle\sum_j P_{ij}(x_i - y_j) \text{ for } p = 2\big), \qquad
    \frac{\partial}{\partial a_i} = \frac{h_i - \langle \bar a, h\rangle}{\sum_k a_k},\quad
    h_i = f_i - \varepsilon \textstyle\sum_j \bar b_j e^{(f_i + g_j - C_{ij})/\varepsilon}

(at convergence :math:`h = f - \varepsilon`, so the weight gradient is the potential
:math:`f` centred by its :math:`\bar a`-weighted mean: tangent to the simplex,
:math:`\langle a, \nabla_a\rangle = 0`, as the normalisation makes the loss invariant to the
weights' scale).  They are exact at convergence; after ``n_iters`` iterations they differ from
differentiating through the iterations by a term proportional to the marginal violation
:math:`\lVert P^\top 1 - \bar b\rVert`, which Sinkhorn shrinks geometrically — for points in
the unit cube with ``epsilon=0.1`` the two agree to about 1e-9 after 100 iterations.
PyTorch autograd and ``jax.grad`` through these losses return the same analytic gradients (the
iterations run on detached inputs; the transport plan is a constant for the backward pass, so
second derivatives are not available).

Common options: ``epsilon`` (the regularisation :math:`\varepsilon > 0`, in the units of the
cost; default 0.1), ``n_iters`` (default 100), ``p`` (the cost's exponent, :math:`\ge 1`,
default 2), ``reduction`` over the batch axes (``"mean"``, ``"sum"``, ``"none"``; without batch
axes every reduction returns the one loss) and ``where`` (a boolean mask over the batch axes).
"""

from __future__ import annotations

from ..core.backend import (
    Array,
    cast,
    compute_dtype,
    finish,
    ignore_float_errors,
    library_name,
    namespace,
    scan,
    stop_gradient,
)
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import any_true, check_float_array, check_int, check_nonempty, check_number

__all__ = ["sinkhorn", "sinkhorn_divergence", "sinkhorn_histograms"]

# libraries whose autograd may differentiate a loss: the iterations run on detached inputs
# there and the analytic gradient is attached to the value (see ``_attach``)
_AUTOGRAD = ("torch", "jax")


def _check_cloud(xp, x, name):
    check_float_array(xp, x, name)
    if x.ndim < 2:
        raise ValueError(
            f"{name} must be a point cloud of shape (..., points, dim); got shape {tuple(x.shape)}"
        )
    check_nonempty(x, name)


def _check_weights(xp, w, name, cloud_shape, cloud_name):
    if w is None:
        return
    check_float_array(xp, w, name)
    n = cloud_shape[-2]
    if tuple(w.shape) not in ((n,), tuple(cloud_shape[:-1])):
        raise ValueError(
            f"{name} must hold one weight per point of {cloud_name}: shape ({n},) or "
            f"{tuple(cloud_shape[:-1])}; got {tuple(w.shape)}"
        )
    if any_true(xp, w < 0):
        raise ValueError(f"{name} must be >= 0 (weights of the points of {cloud_name})")


def _log_weights(xp, w, n, batch, dtype):
    """Normalised weights (broadcast to ``batch + (n,)``), their logs, and their sums."""
    if w is None:
        bar = xp.full(batch + (n,), 1.0 / n, dtype=dtype)
        return bar, xp.log(bar), None
    w = cast(xp, w, dtype)
    total = xp.sum(w, axis=-1, keepdims=True)
    bar = xp.broadcast_to(w / total, batch + (n,))
    with ignore_float_errors(bar, divide="ignore"):  # log 0 = -inf: a point of zero weight
        return bar, xp.log(bar), total


def _logsumexp(xp, z, axis):
    """Log-sum-exp along ``axis``, shifted by the maximum.  Leaner than
    :func:`losskit.core.numerics.logsumexp` (which also takes ``+inf`` logits to softmax's limit): here every
    row holds finite entries (``-C/eps`` plus finite potentials, ``-inf`` only at a point of zero
    weight), and an infinite point gives NaN, as it should."""
    m = xp.max(z, axis=axis, keepdims=True)
    return xp.squeeze(m, axis=axis) + xp.log(xp.sum(xp.exp(z - m), axis=axis))


def _cost(xp, x, y, p):
    """``(C, s)``: the cost ``|x_i - y_j|^p`` and the squared distances, ``(..., n, m)``.

    ``p = 2`` expands ``|x|^2 + |y|^2 - 2 x.y`` (one matrix product, no
    ``(n, m, d)`` array; its rounding near coincident points is harmless to a smooth cost);
    other ``p`` take the differences themselves, as the root of a rounded square would be
    ~1e-8 off at coincident points."""
    if p != 2.0:
        diff = xp.expand_dims(x, axis=-2) - xp.expand_dims(y, axis=-3)
        s = xp.sum(diff * diff, axis=-1)
        return (xp.sqrt(s) if p == 1.0 else s ** (p / 2.0)), s
    xx = xp.sum(x * x, axis=-1)
    yy = xp.sum(y * y, axis=-1)
    cross = xp.matmul(x, xp.matrix_transpose(y))
    s = xp.expand_dims(xx, axis=-1) + xp.expand_dims(yy, axis=-2) - 2.0 * cross
    s = xp.maximum(s, xp.zeros_like(s))  # rounding may leave coincident points at -1e-16
    return s, s


def _solve(xp, cost, a_bar, la, b_bar, lb, eps, n_iters, symmetric, need_grads):
    """Run the fixed budget of iterations on the cost matrix ``(..., n, m)``; return the dual
    value (batch shape) and, when asked, the plan (the partial derivative with respect to the
    cost at the final potentials) and the partial derivatives with respect to the normalised
    weights ``a_bar``, ``b_bar``."""
    neg = -cost / eps  # (..., n, m)
    la_col = xp.expand_dims(la, axis=-1)  # (..., n, 1)
    lb_row = xp.expand_dims(lb, axis=-2)  # (..., 1, m)

    def t_b(v):  # f / eps from g / eps
        return -_logsumexp(xp, neg + lb_row + xp.expand_dims(v, axis=-2), axis=-1)

    def t_a(u):  # g / eps from f / eps
        return -_logsumexp(xp, neg + la_col + xp.expand_dims(u, axis=-1), axis=-2)

    def step(carry, xs):
        u, v = carry
        if symmetric:  # Jacobi updates averaged with the previous potentials (Feydy et al.)
            u, v = 0.5 * (u + t_b(v)), 0.5 * (v + t_a(u))
        else:  # alternating: g, then f (POT's order)
            v = t_a(u)
            u = t_b(v)
        return (u, v), xs

    # start from POT's unit scalings, f = -eps log a (0 at a point of zero weight), so that the
    # iterates are POT's own
    u0 = xp.where(a_bar > 0, -la, xp.zeros_like(la))
    v0 = xp.where(b_bar > 0, -lb, xp.zeros_like(lb))
    if library_name(cost) == "jax":  # one compiled lax.scan step instead of an unrolled loop
        (u, v), _ = scan(step, (u0, v0), (xp.zeros((n_iters,), dtype=la.dtype),))
    else:  # a plain loop: lazy on Dask without slicing and stacking a dummy sequence
        carry = (u0, v0)
        for _ in range(n_iters):
            carry, _ = step(carry, None)
        u, v = carry
    log_plan = neg + la_col + xp.expand_dims(u, axis=-1) + lb_row + xp.expand_dims(v, axis=-2)
    plan = xp.exp(log_plan)
    mass = xp.sum(plan, axis=(-2, -1))
    # <a, f> + <b, g> - eps (sum P - 1)
    dots = xp.sum(a_bar * u, axis=-1) + xp.sum(b_bar * v, axis=-1)
    value = eps * (dots - mass + 1.0)
    if not need_grads:
        return value, None
    # d/da_i = f_i - eps sum_j b_j e^{(f_i + g_j - C_ij)/eps}, the sum read off the plan in the log
    # domain so that a point of zero weight gets its potential too
    row = xp.exp(u - t_b(v))
    col = xp.exp(v - t_a(u))
    return value, {"plan": plan, "a": eps * (u - row), "b": eps * (v - col)}


def _sinkhorn_solve(xp, x, y, a_bar, la, b_bar, lb, eps, n_iters, p, symmetric, need_grads):
    """:func:`_solve` on the cost between the clouds ``x`` and ``y``, with the partial
    derivatives with respect to ``x`` and ``y`` added when asked."""
    cost, s = _cost(xp, x, y, p)
    value, g = _solve(xp, cost, a_bar, la, b_bar, lb, eps, n_iters, symmetric, need_grads)
    if not need_grads:
        return value, None
    plan = g["plan"]
    if p == 2.0:
        weighted = 2.0 * plan
    else:
        pos = s > 0
        safe = xp.where(pos, s, xp.ones_like(s))
        weighted = plan * xp.where(pos, p * safe ** (p / 2.0 - 1.0), xp.zeros_like(s))
    gx = xp.expand_dims(xp.sum(weighted, axis=-1), axis=-1) * x - xp.matmul(weighted, y)
    gy = xp.expand_dims(xp.sum(weighted, axis=-2), axis=-1) * y - xp.matmul(xp.matrix_transpose(weighted), x)
    return value, {"x": gx, "y": gy, "a": g["a"], "b": g["b"]}


def _through_normalisation(xp, h, bar, total):
    """Gradient w.r.t. unnormalised weights from the one w.r.t. ``bar = w / total``."""
    centred = h - xp.sum(bar * h, axis=-1, keepdims=True)
    return centred / total


def _to_shape(xp, g, shape):
    """Sum a per-batch-element gradient over the batch axes a shared argument lacks."""
    extra = g.ndim - len(shape)
    return xp.sum(g, axis=tuple(range(extra))) if extra else g


def _transport_loss(x, y, a, b, *, epsilon, n_iters, p, reduction, where, wrt, debiased):
    xp = namespace(x=x, y=y, a=a, b=b, where=where)
    _check_cloud(xp, x, "x")
    _check_cloud(xp, y, "y")
    if y.ndim != x.ndim or tuple(y.shape[:-2]) != tuple(x.shape[:-2]) or y.shape[-1] != x.shape[-1]:
        raise ValueError(
            "x (..., n, d) and y (..., m, d) must have the same batch axes and point dimension d; "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    _check_weights(xp, a, "a", tuple(x.shape), "x")
    _check_weights(xp, b, "b", tuple(y.shape), "y")
    eps = check_number(epsilon, "epsilon", low=0.0, low_inclusive=False)
    n_iters = check_int(n_iters, "n_iters")
    if n_iters < 1:
        raise ValueError(f"n_iters must be >= 1; got {n_iters}")
    p = check_number(p, "p", low=1.0)

    present = [t for t in (x, y, a, b) if t is not None]
    out_dtype = xp.result_type(*[t.dtype for t in present])
    dtype = compute_dtype(xp, out_dtype)
    library = library_name(x)
    attach = library in _AUTOGRAD and (
        library == "jax" or any(bool(getattr(t, "requires_grad", False)) for t in present)
    )
    xd, yd, ad, bd = (
        None if t is None else cast(xp, stop_gradient(t) if attach else t, dtype) for t in (x, y, a, b)
    )
    batch = tuple(x.shape[:-2])
    n, m = x.shape[-2], y.shape[-2]
    a_bar, la, a_total = _log_weights(xp, ad, n, batch, dtype)
    b_bar, lb, b_total = _log_weights(xp, bd, m, batch, dtype)
    need = bool(wrt) or attach

    def solve(p1, p2, w1, l1, w2, l2, symmetric):
        return _sinkhorn_solve(xp, p1, p2, w1, l1, w2, l2, eps, n_iters, p, symmetric, need)

    value, g = solve(xd, yd, a_bar, la, b_bar, lb, debiased)
    if debiased:
        v_xx, g_xx = solve(xd, xd, a_bar, la, a_bar, la, True)
        v_yy, g_yy = solve(yd, yd, b_bar, lb, b_bar, lb, True)
        value = value - 0.5 * v_xx - 0.5 * v_yy
        if need:
            g = {
                "x": g["x"] - 0.5 * (g_xx["x"] + g_xx["y"]),
                "y": g["y"] - 0.5 * (g_yy["x"] + g_yy["y"]),
                "a": g["a"] - 0.5 * (g_xx["a"] + g_xx["b"]),
                "b": g["b"] - 0.5 * (g_yy["a"] + g_yy["b"]),
            }
    # per batch element, the gradient of that element's loss with respect to each argument
    per = {}
    if need:
        per[0], per[1] = g["x"], g["y"]
        if a is not None:
            per[2] = _through_normalisation(xp, g["a"], a_bar, a_total)
        if b is not None:
            per[3] = _through_normalisation(xp, g["b"], b_bar, b_total)
    originals = {0: x, 1: y, 2: a, 3: b}
    detached = {0: xd, 1: yd, 2: ad, 3: bd}
    trailing = {0: 2, 1: 2, 2: 1, 3: 1}
    return _attach_and_reduce(
        xp, per, originals, detached, trailing, attach, value, batch, dtype, out_dtype, reduction, where, wrt
    )


def _attach_and_reduce(
    xp, per, originals, detached, trailing, attach, value, batch, dtype, out_dtype, reduction, where, wrt
):
    """Attach the per-batch-element gradients ``per`` (argument position -> gradient) to the
    value for autograd, reduce over the batch axes, and return the loss and the gradients asked
    for in ``wrt``; ``trailing`` gives each argument's number of non-batch axes."""
    if attach:
        # value + sum(G * (t - stop_gradient(t))): the same number, whose autograd gradient is
        # the analytic one (the iterations above ran on detached inputs)
        for k, gk in per.items():
            delta = cast(xp, originals[k], dtype) - detached[k]
            if delta.ndim < gk.ndim:
                delta = xp.broadcast_to(delta, tuple(gk.shape))
            axes = tuple(range(-trailing[k], 0))
            value = value + xp.sum(gk * delta, axis=axes)
    reducer = make_reducer(xp, reduction, batch, dtype, where=where)
    grads = {}
    if wrt:
        coef = reducer.grad(xp.ones(batch, dtype=dtype))
        for k in wrt:
            if k not in per:
                continue
            scale = xp.reshape(coef, batch + (1,) * trailing[k])
            grads[k] = _to_shape(xp, per[k] * scale, tuple(originals[k].shape))
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="transport",
    input_space="points",
    formula="min_P <P, C> + eps KL(P | a x b) over couplings of a and b (log-domain Sinkhorn)",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def sinkhorn(
    x: Array,
    y: Array,
    a: Array | None = None,
    b: Array | None = None,
    *,
    epsilon: float = 0.1,
    n_iters: int = 100,
    p: float = 2.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Entropic optimal transport cost between point clouds (Cuturi 2013), log-domain Sinkhorn:

    .. math::
        \mathrm{OT}_\varepsilon(a, b) = \min_{P \in \Pi(\bar a, \bar b)}
        \sum_{ij} P_{ij} \lVert x_i - y_j\rVert^p
        + \varepsilon\,\mathrm{KL}(P \,\|\, \bar a \otimes \bar b)

    returned as the dual objective :math:`\langle \bar a, f\rangle + \langle \bar b, g\rangle
    - \varepsilon(\sum_{ij} P_{ij} - 1)` after ``n_iters`` alternating updates (see the module
    docstring).  It includes the entropic term, so it is :math:`\ge 0` but not 0 at
    ``x == y``; :func:`sinkhorn_divergence` removes that bias.

    Gradient (analytic, envelope theorem; exact at convergence):
    :math:`\partial/\partial x_i = \sum_j P_{ij}\, p \lVert x_i - y_j\rVert^{p-2}(x_i - y_j)`
    (:math:`2\sum_j P_{ij}(x_i - y_j)` for ``p=2``), symmetrically for ``y``; for the weights
    ``a`` (argnums=2), the potential :math:`f - \varepsilon\,(P1)/\bar a` centred by its
    :math:`\bar a`-weighted mean and divided by :math:`\sum_i a_i` (at convergence: :math:`f`
    minus :math:`\langle \bar a, f\rangle`); likewise ``b`` with :math:`g`.  These are the
    derivatives of the objective with the potentials held fixed, not of the iterations: after
    ``n_iters`` iterations they differ from autograd through the loop by a term proportional
    to the remaining marginal violation (about 1e-9 relative for unit-scale points with
    ``epsilon=0.1`` and 100 iterations; raise ``n_iters`` for smaller ``epsilon``).

    Args:
      x: points ``(..., n, d)``.
      y: points ``(..., m, d)``, the same batch axes and ``d``.
      a: weights of ``x``, ``(n,)`` or ``(..., n)``, >= 0 (default uniform); normalised to sum
        to 1.
      b: weights of ``y``, ``(m,)`` or ``(..., m)`` (default uniform); normalised.
      epsilon: the entropic regularisation :math:`\varepsilon > 0` (default 0.1), in the units
        of the cost: scale it with :math:`\text{diameter}^p`.
      n_iters: the fixed number of Sinkhorn iterations, >= 1 (default 100).
      p: the cost :math:`\lVert x - y\rVert_2^p`, ``p >= 1`` (default 2, squared Euclidean).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch axes.
      where: optional boolean mask over the batch axes.

    Example: two points at 0 and 1 against one point at 0.5 (d = 1): every plan moves half the
    mass a distance 0.5, so the cost is :math:`0.25` exactly (KL term 0).

    Equivalent: POT ``ot.sinkhorn2(a, b, ot.dist(x, y), reg=epsilon, method="sinkhorn_log",
    numItermax=n_iters, stopThr=0)`` returns :math:`\langle P, C\rangle` alone; adding
    :math:`\varepsilon \sum P \log(P / (a b^\top))` of POT's plan gives this value (the same
    iterations: POT updates :math:`g` then :math:`f` as here).  GeomLoss's
    ``SamplesLoss("sinkhorn", p=2, blur=epsilon**0.5, debias=False)`` halves the cost
    (:math:`\lVert x - y\rVert^2/2`) and uses ε-scaling.
    """
    return _transport_loss(
        x,
        y,
        a,
        b,
        epsilon=epsilon,
        n_iters=n_iters,
        p=p,
        reduction=reduction,
        where=where,
        wrt=wrt,
        debiased=False,
    )


@catalogued(
    family="transport",
    input_space="points",
    formula="OT_eps(a, b) - OT_eps(a, a)/2 - OT_eps(b, b)/2",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def sinkhorn_divergence(
    x: Array,
    y: Array,
    a: Array | None = None,
    b: Array | None = None,
    *,
    epsilon: float = 0.1,
    n_iters: int = 100,
    p: float = 2.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Debiased Sinkhorn divergence (Feydy et al. 2019, "Interpolating between Optimal Transport
    and MMD using Sinkhorn Divergences"):

    .. math::
        S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b)
        - \tfrac12 \mathrm{OT}_\varepsilon(a, a) - \tfrac12 \mathrm{OT}_\varepsilon(b, b)

    with :math:`\mathrm{OT}_\varepsilon` the entropic cost of :func:`sinkhorn` (entropic term
    included).  For ``p = 1, 2`` it is :math:`\ge 0`, 0 exactly when the two weighted clouds
    are the same measure, and tends to the OT cost as :math:`\varepsilon \to 0` and to an MMD
    as :math:`\varepsilon \to \infty`.

    All three terms run the symmetric iteration of Feydy et al.: simultaneous updates of
    :math:`f, g` averaged with their previous values, ``n_iters`` times.  At ``x == y`` (and
    ``a == b``) the three computations coincide, so the value is exactly 0 whatever the
    budget, and its gradient 0 up to rounding (the plans are symmetric).  At convergence the
    iteration has the same fixed point as :func:`sinkhorn`'s; it approaches it more slowly, so
    give it more iterations for small ``epsilon``.

    Gradient (analytic, envelope theorem; exact at convergence): with :math:`P` the plan of
    :math:`(a, b)` and :math:`Q` the symmetric plan of :math:`(a, a)`,
    :math:`\partial/\partial x_i = \sum_j P_{ij}\,\partial_x C(x_i, y_j)
    - \sum_j Q_{ij}\,\partial_x C(x_i, x_j)` (:math:`2\sum_j P_{ij}(x_i - y_j) -
    2\sum_j Q_{ij}(x_i - x_j)` for ``p=2``), symmetrically for ``y``; for the weights,
    :math:`f_{ab} - f_{aa}` centred by its :math:`\bar a`-weighted mean and divided by
    :math:`\sum_i a_i` (see :func:`sinkhorn`).

    Args:
      x, y, a, b, epsilon, n_iters, p, reduction, where: as :func:`sinkhorn`.

    Equivalent: GeomLoss ``SamplesLoss("sinkhorn", p=2, blur=epsilon**0.5, debias=True)``
    with the halved cost :math:`\lVert x - y\rVert^2/2`.  POT's
    ``ot.bregman.empirical_sinkhorn_divergence(x, y, epsilon, a, b)`` debiases the linear
    costs :math:`\langle P, C\rangle` instead (Genevay et al. 2018) and clips at 0; this value
    is POT's plus :math:`\varepsilon(\mathrm{KL}_{ab} - \tfrac12\mathrm{KL}_{aa} -
    \tfrac12\mathrm{KL}_{bb})` of the three plans.
    """
    return _transport_loss(
        x,
        y,
        a,
        b,
        epsilon=epsilon,
        n_iters=n_iters,
        p=p,
        reduction=reduction,
        where=where,
        wrt=wrt,
        debiased=True,
    )


def _check_histogram(xp, w, name):
    check_float_array(xp, w, name)
    if w.ndim < 1:
        raise ValueError(f"{name} must be a histogram of shape (..., bins); got a scalar")
    check_nonempty(w, name)
    if any_true(xp, w < 0):
        raise ValueError(f"{name} must be >= 0 (a histogram)")


def _histogram_loss(a, b, cost, *, epsilon, n_iters, reduction, where, wrt):
    xp = namespace(a=a, b=b, cost=cost, where=where)
    _check_histogram(xp, a, "a")
    _check_histogram(xp, b, "b")
    check_float_array(xp, cost, "cost")
    n, m = a.shape[-1], b.shape[-1]
    if cost.ndim < 2 or tuple(cost.shape[-2:]) != (n, m):
        raise ValueError(
            f"cost must be a ground-cost matrix of shape (..., {n}, {m}) for histograms a (..., {n}) "
            f"and b (..., {m}); got shape {tuple(cost.shape)}"
        )
    batches = (tuple(a.shape[:-1]), tuple(b.shape[:-1]), tuple(cost.shape[:-2]))
    batch = max(batches, key=len)
    if any(s not in ((), batch) for s in batches):
        raise ValueError(
            "a (..., n), b (..., m) and cost (..., n, m) must have the same batch axes, or none; "
            f"got shapes {tuple(a.shape)}, {tuple(b.shape)} and {tuple(cost.shape)}"
        )
    eps = check_number(epsilon, "epsilon", low=0.0, low_inclusive=False)
    n_iters = check_int(n_iters, "n_iters")
    if n_iters < 1:
        raise ValueError(f"n_iters must be >= 1; got {n_iters}")

    out_dtype = xp.result_type(a.dtype, b.dtype, cost.dtype)
    dtype = compute_dtype(xp, out_dtype)
    library = library_name(cost)
    attach = library in _AUTOGRAD and (
        library == "jax" or any(bool(getattr(t, "requires_grad", False)) for t in (a, b, cost))
    )
    ad, bd, cd = (cast(xp, stop_gradient(t) if attach else t, dtype) for t in (a, b, cost))
    a_bar, la, a_total = _log_weights(xp, ad, n, batch, dtype)
    b_bar, lb, b_total = _log_weights(xp, bd, m, batch, dtype)
    cd = xp.broadcast_to(cd, batch + (n, m))
    need = bool(wrt) or attach
    value, g = _solve(xp, cd, a_bar, la, b_bar, lb, eps, n_iters, False, need)
    per = {}
    if need:
        per[0] = _through_normalisation(xp, g["a"], a_bar, a_total)
        per[1] = _through_normalisation(xp, g["b"], b_bar, b_total)
        per[2] = g["plan"]
    return _attach_and_reduce(
        xp,
        per,
        {0: a, 1: b, 2: cost},
        {0: ad, 1: bd, 2: cd},
        {0: 1, 1: 1, 2: 2},
        attach,
        value,
        batch,
        dtype,
        out_dtype,
        reduction,
        where,
        wrt,
    )


@catalogued(
    family="transport",
    input_space="points",
    formula="min_P <P, C> + eps KL(P | a x b) over couplings of histograms a and b, C given",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def sinkhorn_histograms(
    a: Array,
    b: Array,
    cost: Array,
    *,
    epsilon: float = 0.1,
    n_iters: int = 100,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Entropic optimal transport cost between histograms over a given ground cost (Cuturi
    2013), log-domain Sinkhorn:

    .. math::
        \mathrm{OT}_\varepsilon(a, b) = \min_{P \in \Pi(\bar a, \bar b)}
        \langle P, C\rangle + \varepsilon\,\mathrm{KL}(P \,\|\, \bar a \otimes \bar b),
        \qquad \bar a = a / \textstyle\sum_i a_i,\ \bar b = b / \textstyle\sum_j b_j,

    the same solver and value as :func:`sinkhorn` (the dual objective after ``n_iters``
    alternating updates, POT's iterations; entropic term included), with the cost matrix
    :math:`C` given instead of computed from points.

    Gradient (analytic, envelope theorem; exact at convergence): with respect to the cost
    (argnums=2), the transport plan :math:`P_{ij} = \bar a_i \bar b_j
    e^{(f_i + g_j - C_{ij})/\varepsilon}`; with respect to ``a`` (argnums=0), the potential
    :math:`f - \varepsilon\,(P1)/\bar a` centred by its :math:`\bar a`-weighted mean and
    divided by :math:`\sum_i a_i` (at convergence, :math:`f - \langle \bar a, f\rangle`:
    tangent to the simplex, as the loss ignores the histograms' scale); likewise ``b`` with
    :math:`g`.  After ``n_iters`` iterations these differ from autograd through the loop by a
    term proportional to the remaining marginal violation (see :func:`sinkhorn`).

    Args:
      a: histogram ``(..., n)`` or ``(n,)``, entries >= 0, normalised to sum to 1.
      b: histogram ``(..., m)`` or ``(m,)``, entries >= 0, normalised.
      cost: ground cost ``(..., n, m)`` or ``(n, m)``, e.g. ``ot.dist(x, y)``.  The batch
        axes of ``a``, ``b`` and ``cost`` are each absent or the same.
      epsilon: the entropic regularisation :math:`\varepsilon > 0` (default 0.1), in the units
        of the cost.
      n_iters: the fixed number of Sinkhorn iterations, >= 1 (default 100).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch axes.
      where: optional boolean mask over the batch axes.

    Example: ``a = [1, 0]``, ``b = [0, 1]``, ``cost = [[0, 1], [1, 0]]``: the only plan moves
    all the mass at cost 1, so the value is 1 (KL term 0).

    Equivalent: POT ``ot.sinkhorn2(a, b, cost, reg=epsilon, method="sinkhorn_log",
    numItermax=n_iters, stopThr=0)`` returns :math:`\langle P, C\rangle` alone; adding
    :math:`\varepsilon\,\mathrm{KL}(P \,\|\, a b^\top)` of POT's plan ``ot.sinkhorn(...)``
    gives this value, and that plan is this loss's gradient with respect to ``cost``.
    """
    return _histogram_loss(
        a, b, cost, epsilon=epsilon, n_iters=n_iters, reduction=reduction, where=where, wrt=wrt
    )
