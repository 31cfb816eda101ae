"""Cases for the regularisation penalties, against their defining sums."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _params(masks=False, **options):
    def make(rng):
        params = (rng.normal(size=(3, 4)), rng.normal(size=(4,)), rng.normal(size=(2, 2, 3)))
        kwargs = dict(options)
        if masks:
            kwargs["where"] = tuple(rng.uniform(size=p.shape) > 0.3 for p in params)
        return params, kwargs

    return make


def _zeros(rng):
    return (np.zeros((3, 4)), np.zeros(5)), {}


def _formula(element):
    def ref(a, k, r):
        masks = k.get("where") or (None,) * len(a)
        total = 0.0
        count = 0
        for p, m in zip(a, masks):
            m = np.ones(p.shape, dtype=bool) if m is None else m
            total += element(p[m]).sum()
            count += m.sum()
        total *= k.get("scale", 1.0)
        return np.asarray(total / count if r == "mean" else total)

    return ref


def _case(name, fn, element, **options):
    return Case(
        id=name,
        fn=fn,
        make_args=_params(**options),
        numpy_reference=_formula(element),
        reductions=("sum", "mean"),
        grad_argnums=(0, 1, 2),
        perfect=_zeros,
    )


CASES = [
    _case("l1_penalty", lk.l1_penalty, np.abs),
    _case("l1_penalty-scale-masks", lk.l1_penalty, np.abs, scale=0.3, masks=True),
    _case("l2_penalty", lk.l2_penalty, np.square),
    _case("l2_penalty-scale-masks", lk.l2_penalty, np.square, scale=1e-2, masks=True),
]
