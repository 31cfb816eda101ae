"""Cases for the preference losses, each against its paper's formula written here in NumPy
(TRL's own loss code is compared in tests/losses/test_preference.py)."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def reduce(values, where, reduction):
    if where is not None:
        values = np.where(where, values, 0.0)
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    count = values.size if where is None else np.broadcast_to(where, values.shape).sum()
    return values.sum() / count if count else np.float64(0.0)


# -- DPO (Rafailov et al. 2023, eq. 7) and its variants ---------------------------------------


def dpo_reference(args, kwargs, reduction):
    pc, pr, rc, rr = args
    beta = kwargs.get("beta", 0.1)
    eps = kwargs.get("label_smoothing", 0.0)
    loss_type = kwargs.get("loss_type", "sigmoid")
    h = (pc - pr) - (rc - rr)
    if loss_type == "sigmoid":  # conservative DPO: the loss expected under label flips at rate eps
        value = -(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h)
    elif loss_type == "robust":  # Chowdhury et al. 2024, eq. 7
        value = (-(1 - eps) * log_sigmoid(beta * h) + eps * log_sigmoid(-beta * h)) / (1 - 2 * eps)
    elif loss_type == "ipo":  # Azar et al. 2023, eq. 17, tau = beta
        value = (h - 1 / (2 * beta)) ** 2
    else:  # SLiC's calibration hinge, Zhao et al. 2023, with delta = 1 / beta
        value = np.maximum(0.0, 1 - beta * h)
    return reduce(value, kwargs.get("where"), reduction)


def _pair_args(n=6, count=4, low=5.0, high=40.0, masked=False, **options):
    def make(rng):
        args = tuple(-rng.uniform(low, high, size=n) for _ in range(count))
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=n) < 0.6
            where[0] = True
            kwargs["where"] = where
        return args, kwargs

    return make


def _dpo_args(**options):
    return _pair_args(**options)


def _dpo_args_close(**options):
    """Margins of order 1/beta, where the sigmoid is neither saturated nor linear."""

    def make(rng):
        pc = -rng.uniform(5, 40, size=6)
        rc, rr = -rng.uniform(5, 40, size=6), -rng.uniform(5, 40, size=6)
        pr = pc - (rc - rr) - rng.normal(scale=10.0, size=6)
        return (pc, pr, rc, rr), dict(options)

    return make


def simpo_reference(args, kwargs, reduction):
    pc, pr = args
    beta, gamma = kwargs.get("beta", 2.0), kwargs.get("gamma", 1.0)
    eps = kwargs.get("label_smoothing", 0.0)
    nc, nr = kwargs.get("chosen_lengths"), kwargs.get("rejected_lengths")
    avg_c = pc if nc is None else pc / nc
    avg_r = pr if nr is None else pr / nr
    z = beta * avg_c - beta * avg_r - gamma  # Meng et al. 2024, eq. 6
    value = -(1 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z)
    return reduce(value, kwargs.get("where"), reduction)


def _simpo_args(lengths=False, **options):
    def make(rng):
        if lengths:
            nc, nr = rng.integers(3, 30, size=6), rng.integers(3, 30, size=6)
            pc, pr = -rng.uniform(0.2, 3, size=6) * nc, -rng.uniform(0.2, 3, size=6) * nr
            return (pc, pr), dict(options, chosen_lengths=nc, rejected_lengths=nr)
        return (-rng.uniform(0.2, 3, size=6), -rng.uniform(0.2, 3, size=6)), dict(options)

    return make


def orpo_reference(args, kwargs, reduction):
    a, b = args
    lam = kwargs.get("beta", 0.1)
    p_c, p_r = np.exp(a), np.exp(b)
    log_odds = np.log(p_c / (1 - p_c)) - np.log(p_r / (1 - p_r))  # Hong et al. 2024, eqs. 4-6
    value = -a - lam * log_sigmoid(log_odds)  # eq. 7 with the NLL of eq. 2
    return reduce(value, kwargs.get("where"), reduction)


def _orpo_args(**options):
    def make(rng):
        return (-rng.uniform(0.05, 3.0, size=(2, 4)), -rng.uniform(0.05, 3.0, size=(2, 4))), dict(options)

    return make


def cpo_reference(args, kwargs, reduction):
    pc, pr = args
    beta, alpha = kwargs.get("beta", 0.1), kwargs.get("alpha", 1.0)
    eps = kwargs.get("label_smoothing", 0.0)
    nc = kwargs.get("chosen_lengths")
    z = beta * (pc - pr)  # Xu et al. 2024, eq. 3
    nll = -pc if nc is None else -pc / nc
    value = -(1 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z) + alpha * nll
    return reduce(value, kwargs.get("where"), reduction)


def _cpo_args(lengths=False, **options):
    def make(rng):
        pc, pr = -rng.uniform(5, 40, size=6), -rng.uniform(5, 40, size=6)
        kwargs = dict(options)
        if lengths:
            kwargs["chosen_lengths"] = rng.integers(2, 20, size=6).astype(np.float64)
        return (pc, pr), kwargs

    return make


def kto_reference(args, kwargs, reduction):
    pi, ref, desirable = args
    beta = kwargs.get("beta", 0.1)
    w_d, w_u = kwargs.get("desirable_weight", 1.0), kwargs.get("undesirable_weight", 1.0)
    if kwargs.get("policy_kl_logps") is None:
        z = 0.0
    else:  # the batch estimate of KL(pi || ref) from mismatched pairs, floored at 0
        z = max(0.0, float(np.mean(kwargs["policy_kl_logps"] - kwargs["reference_kl_logps"])))
    r = pi - ref
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    value = np.where(desirable, w_d * (1 - sig(beta * (r - z))), w_u * (1 - sig(beta * (z - r))))
    return reduce(value, kwargs.get("where"), reduction)


def _kto_args(kl=True, masked=False, **options):
    def make(rng):
        n = 8
        pi, ref = -rng.uniform(5, 40, size=n), -rng.uniform(5, 40, size=n)
        desirable = rng.uniform(size=n) < 0.5
        desirable[:2] = [True, False]
        kwargs = dict(options)
        if kl:
            # mismatched completions: the policy a little above the reference on average
            ref_kl = -rng.uniform(5, 40, size=5)
            kwargs["policy_kl_logps"] = ref_kl + rng.normal(1.0, 2.0, size=5)
            kwargs["reference_kl_logps"] = ref_kl
        if masked:
            where = rng.uniform(size=n) < 0.6
            where[0] = True
            kwargs["where"] = where
        return (pi, ref, desirable), kwargs

    return make


CASES = [
    Case(
        id="dpo",
        fn=lk.dpo,
        make_args=_dpo_args_close(),
        numpy_reference=dpo_reference,
        grad_argnums=(0, 1, 2, 3),
    ),
    Case(
        id="dpo-beta-where",
        fn=lk.dpo,
        make_args=_dpo_args(beta=0.3, masked=True),
        numpy_reference=dpo_reference,
        grad_argnums=(0, 1, 2, 3),
    ),
    Case(
        id="dpo-conservative",
        fn=lk.dpo,
        make_args=_dpo_args_close(label_smoothing=0.2),
        numpy_reference=dpo_reference,
        grad_argnums=(0, 1, 2, 3),
    ),
    Case(
        id="dpo-robust",
        fn=lk.dpo,
        make_args=_dpo_args_close(loss_type="robust", label_smoothing=0.2),
        numpy_reference=dpo_reference,
        grad_argnums=(0, 1, 2, 3),
        nonnegative=False,
    ),
    Case(
        id="dpo-ipo",
        fn=lk.dpo,
        make_args=_dpo_args_close(loss_type="ipo", beta=0.5),
        numpy_reference=dpo_reference,
        grad_argnums=(0, 1, 2, 3),
    ),
    Case(
        id="dpo-hinge",
        fn=lk.dpo,
        make_args=_dpo_args_close(loss_type="hinge"),
        numpy_reference=dpo_reference,
        grad_argnums=(0, 1, 2, 3),
    ),
    Case(
        id="simpo", fn=lk.simpo, make_args=_simpo_args(), numpy_reference=simpo_reference, grad_argnums=(0, 1)
    ),
    Case(
        id="simpo-lengths-smoothing",
        fn=lk.simpo,
        make_args=_simpo_args(lengths=True, beta=2.5, gamma=1.4, label_smoothing=0.1),
        numpy_reference=simpo_reference,
        grad_argnums=(0, 1),
    ),
    Case(id="orpo", fn=lk.orpo, make_args=_orpo_args(), numpy_reference=orpo_reference, grad_argnums=(0, 1)),
    Case(
        id="orpo-beta",
        fn=lk.orpo,
        make_args=_orpo_args(beta=0.5),
        numpy_reference=orpo_reference,
        grad_argnums=(0, 1),
    ),
    Case(id="cpo", fn=lk.cpo, make_args=_cpo_args(), numpy_reference=cpo_reference, grad_argnums=(0, 1)),
    Case(
        id="cpo-lengths-smoothing",
        fn=lk.cpo,
        make_args=_cpo_args(lengths=True, beta=0.2, alpha=0.5, label_smoothing=0.1),
        numpy_reference=cpo_reference,
        grad_argnums=(0, 1),
    ),
    Case(id="kto", fn=lk.kto, make_args=_kto_args(), numpy_reference=kto_reference, grad_argnums=(0, 1)),
    Case(
        id="kto-weights-where-no-kl",
        fn=lk.kto,
        make_args=_kto_args(kl=False, masked=True, beta=0.3, desirable_weight=1.5, undesirable_weight=0.7),
        numpy_reference=kto_reference,
        grad_argnums=(0, 1),
    ),
]
