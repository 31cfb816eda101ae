"""Cases for distillation from hidden states: forward KL, reverse KL and the generalised JSD of
GKD between a student's and a teacher's linear heads, against the formulas on the full logits
in NumPy (float64)."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _args(divergence, *, beta=0.5, temperature=1.0, lead=(7,), masked=False, bias=True, chunk_size=3):
    def make(rng):
        ds, dt, v = 4, 3, 9
        sh = rng.standard_normal((*lead, ds))
        th = rng.standard_normal((*lead, dt))
        sw = rng.standard_normal((v, ds)) * 0.8
        tw = rng.standard_normal((v, dt)) * 0.8
        args = [sh, sw, th, tw]
        if bias:
            args += [rng.standard_normal(v), rng.standard_normal(v)]
        kwargs = {
            "divergence": divergence,
            "beta": beta,
            "temperature": temperature,
            "chunk_size": chunk_size,
        }
        if masked:
            where = rng.random(lead) > 0.3
            where.reshape(-1)[0] = True
            kwargs["where"] = where
        return tuple(args), kwargs

    return make


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def numpy_linear_distillation(args, kwargs, reduction):
    """The divergences on the full tempered logits, from their definitions."""
    sh, sw, th, tw, *biases = args
    sb, tb = biases if biases else (0.0, 0.0)
    temp, beta, div = kwargs["temperature"], kwargs["beta"], kwargs["divergence"]
    log_q = _log_softmax((sh @ sw.T + sb) / temp)  # student
    log_p = _log_softmax((th @ tw.T + tb) / temp)  # teacher
    p, q = np.exp(log_p), np.exp(log_q)
    if div == "forward_kl" or (div == "jsd" and beta == 0):
        per = (p * (log_p - log_q)).sum(-1)
    elif div == "reverse_kl" or (div == "jsd" and beta == 1):
        per = (q * (log_q - log_p)).sum(-1)
    else:
        m = beta * p + (1 - beta) * q
        per = beta * (p * np.log(p / m)).sum(-1) + (1 - beta) * (q * np.log(q / m)).sum(-1)
    where = kwargs.get("where")
    if where is not None:
        per = np.where(where, per, 0.0)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    count = per.size if where is None else where.sum()
    return per.sum() / count if count else 0.0 * per.sum()


CASES = [
    Case(
        id="linear_distillation-forward_kl",
        fn=lk.linear_distillation,
        make_args=_args("forward_kl"),
        numpy_reference=numpy_linear_distillation,
        grad_argnums=(0, 1, 4),
    ),
    Case(
        id="linear_distillation-reverse_kl-T2-where",
        fn=lk.linear_distillation,
        make_args=_args("reverse_kl", temperature=2.0, lead=(2, 4), masked=True),
        numpy_reference=numpy_linear_distillation,
        grad_argnums=(0, 1, 4),
    ),
    Case(
        id="linear_distillation-jsd-beta0.3-nobias",
        fn=lk.linear_distillation,
        make_args=_args("jsd", beta=0.3, temperature=0.7, bias=False, chunk_size="auto"),
        numpy_reference=numpy_linear_distillation,
        grad_argnums=(0, 1),
    ),
    Case(
        id="linear_distillation-jsd-beta0.5-where",
        fn=lk.linear_distillation,
        make_args=_args("jsd", masked=True, lead=(3, 3)),
        numpy_reference=numpy_linear_distillation,
        grad_argnums=(0, 1, 4),
    ),
]
