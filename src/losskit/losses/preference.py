"""Preference-optimisation losses on sequence log-probabilities.

A language model's preference data come in pairs — a prompt with a *chosen* (preferred) and a
*rejected* completion — or, for KTO, as single completions labelled desirable or undesirable.
Every loss here takes the log-probability of each completion under the policy being trained
(and, where the method uses one, under a frozen reference model): one number per sequence,
the sum (or, where the method says so, the mean) of its tokens' log-probabilities, as
:func:`losskit.sequence_log_probs` or any trainer computes them.  So the losses are small and
cheap; what costs memory is the per-token log-probabilities over the vocabulary, which
:func:`losskit.linear_log_probs` computes from hidden states without the logits.

- :func:`dpo`: Direct Preference Optimisation (Rafailov et al., 2023) and the variants that
  change only the function of the implicit reward margin — conservative DPO (label smoothing),
  robust DPO (Chowdhury et al., 2024), IPO (Azar et al., 2023) and SLiC's hinge (Zhao et al.,
  2023);
- :func:`simpo`: SimPO (Meng et al., 2024), reference-free with length-normalised rewards and a
  target margin;
- :func:`orpo`: ORPO (Hong et al., 2024), the chosen completion's NLL plus an odds-ratio term;
- :func:`cpo`: CPO (Xu et al., 2024), a reference-free sigmoid on the policy margin plus the
  chosen completion's NLL;
- :func:`kto`: KTO (Ethayarajh et al., 2024), unpaired desirable/undesirable completions against
  a batch estimate of the policy's KL from the reference.

Every loss has ``reduction`` (``"mean"`` default, ``"sum"``, ``"none"``: one value per pair or
completion) and a ``where=`` mask over them; when nothing counts, ``mean`` is 0 with a zero
gradient.  Analytic gradients with respect to each log-probability argument come from
:func:`losskit.value_and_grad`.  The inverse temperature ``beta`` and the margins are smooth
hyperparameters: numbers or 0-d arrays, learnable or traced by ``jax.jit``.
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, is_integer, namespace, stop_gradient
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    any_true,
    check_float_array,
    check_hyperparameter,
    check_mask,
    check_nonempty,
    check_number,
    check_same_shape,
)

__all__ = ["dpo", "simpo", "orpo", "cpo", "kto"]

DPO_LOSS_TYPES = ("sigmoid", "robust", "ipo", "hinge")


def _check_log_probs(xp, arrays: dict[str, Array]) -> tuple[object, object]:
    """Validate sequence log-probabilities of one shape; return (caller dtype, compute dtype)."""
    names = list(arrays)
    first = arrays[names[0]]
    for name in names:
        check_float_array(xp, arrays[name], name)
        check_same_shape(first, arrays[name], names[0], name)
    check_nonempty(first, names[0])
    out_dtype = xp.result_type(*(a.dtype for a in arrays.values()))
    return out_dtype, compute_dtype(xp, out_dtype)


def _check_label_smoothing(label_smoothing: object, robust: bool) -> float:
    # robust DPO divides by 1 - 2 eps; conservative DPO's eps is the probability that a pair's
    # labels are flipped, which above 1/2 would simply swap chosen and rejected
    return check_number(label_smoothing, "label_smoothing", low=0.0, high=0.5, high_inclusive=not robust)


def _smoothed_sigmoid(xp, z: Array, eps: float, robust: bool) -> tuple[Array, Array]:
    """The loss of a scaled margin ``z`` = beta * h and its derivative d loss / d z.

    conservative (robust=False):  (1 - eps) softplus(-z) + eps softplus(z)
        d/dz = -(1 - eps) sigmoid(-z) + eps sigmoid(z)
    robust:  [(1 - eps) softplus(-z) - eps softplus(z)] / (1 - 2 eps)
        d/dz = -[(1 - eps) sigmoid(-z) + eps sigmoid(z)] / (1 - 2 eps)
    At eps = 0 both are DPO's -log sigmoid(z), with derivative -sigmoid(-z).
    """
    value = numerics.softplus(xp, -z)
    slope = -numerics.sigmoid(xp, -z)
    if eps == 0.0:
        return value, slope
    flipped, flipped_slope = numerics.softplus(xp, z), numerics.sigmoid(xp, z)
    if robust:
        scale = 1.0 / (1.0 - 2.0 * eps)
        return ((1.0 - eps) * value - eps * flipped) * scale, (
            (1.0 - eps) * slope - eps * flipped_slope
        ) * scale
    return (1.0 - eps) * value + eps * flipped, (1.0 - eps) * slope + eps * flipped_slope


def _lengths(
    xp, lengths: Array | None, like: Array, name: str, like_name: str, dtype: object
) -> Array | None:
    """Optional positive per-sequence lengths (integer or floating) as the compute dtype."""
    if lengths is None:
        return None
    if not (is_integer(xp, lengths) or xp.isdtype(lengths.dtype, "real floating")):
        raise TypeError(f"{name} must hold sequence lengths (integer or floating); got dtype {lengths.dtype}")
    check_same_shape(like, lengths, like_name, name)
    if any_true(xp, ~(lengths > 0)):
        raise ValueError(f"{name} must hold lengths > 0 (tokens per completion)")
    return xp.astype(lengths, dtype)


@catalogued(
    family="preference",
    input_space="log-probabilities",
    formula="-log sigmoid(beta ((pi_c - pi_r) - (ref_c - ref_r))); robust, ipo, hinge variants",
)
@loss_function
def dpo(
    policy_chosen_logps: Array,
    policy_rejected_logps: Array,
    reference_chosen_logps: Array,
    reference_rejected_logps: Array,
    *,
    beta: float | Array = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Direct Preference Optimisation and its margin variants, per preference pair.

    With the implicit reward margin
    :math:`h = (\log\pi(y_c) - \log\pi(y_r)) - (\log\pi_{ref}(y_c) - \log\pi_{ref}(y_r))`
    (policy minus reference, chosen minus rejected):

    - ``"sigmoid"`` (DPO, Rafailov et al. 2023, eq. 7), with ``label_smoothing`` :math:`\epsilon`
      the conservative DPO of Mitchell (2023), the expected loss when a pair's labels are
      flipped with probability :math:`\epsilon`:
      :math:`\ell = -(1-\epsilon)\log\sigma(\beta h) - \epsilon\log\sigma(-\beta h)`;
    - ``"robust"`` (rDPO, Chowdhury et al. 2024, eq. 7), the unbiased estimate of the clean
      loss under flip rate :math:`\epsilon < 1/2` (can be negative):
      :math:`\ell = [-(1-\epsilon)\log\sigma(\beta h) + \epsilon\log\sigma(-\beta h)] / (1-2\epsilon)`;
    - ``"ipo"`` (IPO, Azar et al. 2023, eq. 17): :math:`\ell = (h - 1/(2\beta))^2`, with
      :math:`\beta` the paper's :math:`\tau`.  The IPO authors (and TRL) use log-probabilities
      averaged over each completion's tokens here: pass means, not sums;
    - ``"hinge"`` (SLiC, Zhao et al. 2023, eq. 2 with margin :math:`\delta = 1/\beta`):
      :math:`\ell = \max(0,\ 1 - \beta h)`.

    Gradients (``argnums`` 0–3): :math:`\partial\ell/\partial h` times :math:`+1, -1, -1, +1`,
    where :math:`\partial\ell/\partial h` is :math:`-\beta\sigma(-\beta h)` for DPO,
    :math:`2(h - 1/(2\beta))` for IPO and :math:`-\beta` where the hinge is active.

    Args:
      policy_chosen_logps, policy_rejected_logps: :math:`\log\pi(y_c|x)`,
        :math:`\log\pi(y_r|x)` under the policy, any shape (typically ``(batch,)``).
      reference_chosen_logps, reference_rejected_logps: the same under the frozen reference
        model, same shape (zeros give reference-free DPO).
      beta: :math:`\beta > 0`, the strength of the KL constraint (default 0.1).
      loss_type: ``"sigmoid"`` (default), ``"robust"``, ``"ipo"`` or ``"hinge"``.
      label_smoothing: :math:`\epsilon \in [0, 1/2]` for ``"sigmoid"`` (conservative DPO),
        :math:`[0, 1/2)` for ``"robust"``; must be 0 for ``"ipo"`` and ``"hinge"``.
      reduction: ``"mean"`` (default, over pairs), ``"sum"``, ``"none"`` (one value per pair).
      where: optional boolean mask over the pairs.

    Equivalent: TRL's ``DPOTrainer`` with ``loss_type`` ``"sigmoid"``, ``"robust"``, ``"ipo"``,
    ``"hinge"`` (same numbers; TRL's ``"sigmoid"`` no longer applies ``label_smoothing``).
    """
    arrays = {
        "policy_chosen_logps": policy_chosen_logps,
        "policy_rejected_logps": policy_rejected_logps,
        "reference_chosen_logps": reference_chosen_logps,
        "reference_rejected_logps": reference_rejected_logps,
    }
    xp = namespace(**arrays, where=where)
    out_dtype, dtype = _check_log_probs(xp, arrays)
    if not isinstance(loss_type, str) or loss_type not in DPO_LOSS_TYPES:
        raise ValueError(
            f"loss_type must be one of {', '.join(map(repr, DPO_LOSS_TYPES))}; got {loss_type!r}"
        )
    eps = _check_label_smoothing(label_smoothing, robust=loss_type == "robust")
    if eps != 0.0 and loss_type in ("ipo", "hinge"):
        raise ValueError(
            f"label_smoothing applies to the 'sigmoid' and 'robust' losses; got {eps} with {loss_type!r}"
        )
    beta = check_hyperparameter(beta, "beta", like=policy_chosen_logps, low=0.0, low_inclusive=False)
    pc, pr, rc, rr = (cast(xp, a, dtype) for a in arrays.values())
    shape = tuple(pc.shape)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    h = (pc - pr) - (rc - rr)
    if loss_type in ("sigmoid", "robust"):
        value, slope = _smoothed_sigmoid(xp, beta * h, eps, robust=loss_type == "robust")
        dh = beta * slope
    elif loss_type == "ipo":
        gap = h - 1.0 / (2.0 * beta)
        value, dh = gap * gap, 2.0 * gap
    else:  # hinge
        raw = 1.0 - beta * h
        active = ~(raw <= 0)  # a NaN margin gives a NaN loss
        zero = xp.zeros_like(raw)
        value = xp.where(active, raw, zero)
        dh = xp.where(active, -beta * xp.ones_like(raw), zero)
    grads = {}
    if wrt:
        g = reducer.grad(dh)
        for n, sign in ((0, 1.0), (1, -1.0), (2, -1.0), (3, 1.0)):
            if n in wrt:
                grads[n] = g if sign > 0 else -g
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="preference",
    input_space="log-probabilities",
    formula="-log sigmoid(beta (pi_c / |y_c| - pi_r / |y_r|) - gamma)",
)
@loss_function
def simpo(
    policy_chosen_logps: Array,
    policy_rejected_logps: Array,
    *,
    beta: float | Array = 2.0,
    gamma: float | Array = 1.0,
    label_smoothing: float = 0.0,
    chosen_lengths: Array | None = None,
    rejected_lengths: Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""SimPO, Simple Preference Optimisation (Meng et al., 2024, eq. 6): reference-free, the
    reward of a completion its length-normalised log-probability,

    .. math::
        \ell = -\log\sigma\Big(\frac{\beta}{|y_c|}\log\pi(y_c|x)
               - \frac{\beta}{|y_r|}\log\pi(y_r|x) - \gamma\Big),

    with a target reward margin :math:`\gamma`.  ``label_smoothing`` :math:`\epsilon` mixes in
    the flipped pair as conservative DPO does (TRL's ``CPOTrainer`` with ``loss_type="simpo"``):
    :math:`-(1-\epsilon)\log\sigma(z) - \epsilon\log\sigma(-z)`.

    Gradients (``argnums`` 0, 1): :math:`\pm\beta\,\partial\ell/\partial z / |y|`.

    Args:
      policy_chosen_logps, policy_rejected_logps: per-completion log-probabilities under the
        policy, any shape (typically ``(batch,)``): the *mean* over each completion's tokens,
        or the sum when ``chosen_lengths`` / ``rejected_lengths`` are given.
      beta: :math:`\beta > 0` (default 2.0, the paper's usual range is 2.0–2.5).
      gamma: the target margin :math:`\gamma` (default 1.0; the paper tunes :math:`\gamma/\beta`
        around 0.5).
      label_smoothing: :math:`\epsilon \in [0, 1/2]` (default 0).
      chosen_lengths, rejected_lengths: optional token counts :math:`|y|` (> 0, same shape):
        the log-probabilities are then sums and are divided by them here.
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (one value per pair).
      where: optional boolean mask over the pairs.

    Equivalent: TRL's ``CPOTrainer`` with ``loss_type="simpo"``, ``cpo_alpha=0`` (same numbers).
    """
    arrays = {"policy_chosen_logps": policy_chosen_logps, "policy_rejected_logps": policy_rejected_logps}
    xp = namespace(**arrays, chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths, where=where)
    out_dtype, dtype = _check_log_probs(xp, arrays)
    eps = _check_label_smoothing(label_smoothing, robust=False)
    beta = check_hyperparameter(beta, "beta", like=policy_chosen_logps, low=0.0, low_inclusive=False)
    gamma = check_hyperparameter(gamma, "gamma", like=policy_chosen_logps)
    nc = _lengths(xp, chosen_lengths, policy_chosen_logps, "chosen_lengths", "policy_chosen_logps", dtype)
    nr = _lengths(xp, rejected_lengths, policy_chosen_logps, "rejected_lengths", "policy_chosen_logps", dtype)
    pc, pr = (cast(xp, a, dtype) for a in arrays.values())
    ac = pc if nc is None else pc / nc
    ar = pr if nr is None else pr / nr
    reducer = make_reducer(xp, reduction, tuple(pc.shape), dtype, where=where)
    value, slope = _smoothed_sigmoid(xp, beta * (ac - ar) - gamma, eps, robust=False)
    grads = {}
    if wrt:
        g = reducer.grad(beta * slope)
        if 0 in wrt:
            grads[0] = g if nc is None else g / nc
        if 1 in wrt:
            grads[1] = -g if nr is None else -g / nr
    return finish(xp, out_dtype, reducer.value(value), grads)


def _log1mexp(xp, x: Array) -> Array:
    r""":math:`\log(1 - e^x)` for :math:`x \le 0`, accurate everywhere (Mächler, 2012):
    :math:`\log(-\mathrm{expm1}(x))` near 0, :math:`\mathrm{log1p}(-e^x)` below :math:`-\log 2`."""
    near = x > -0.6931471805599453
    # each branch is evaluated at a point where it is finite, so neither leaks NaN into the other
    safe_near = xp.where(near, x, -xp.ones_like(x))
    safe_far = xp.where(near, -xp.ones_like(x), x)
    return xp.where(near, xp.log(-xp.expm1(safe_near)), xp.log1p(-xp.exp(safe_far)))


def _check_nonpositive(xp, x: Array, name: str) -> None:
    if any_true(xp, x > 0):
        raise ValueError(f"{name} must hold log-probabilities <= 0; got a maximum of {float(xp.max(x)):g}")


@catalogued(
    family="preference",
    input_space="log-probabilities",
    formula="-pi_c - beta log sigmoid(log odds(pi_c) - log odds(pi_r)), odds(p) = p / (1 - p)",
)
@loss_function
def orpo(
    policy_chosen_logps: Array,
    policy_rejected_logps: Array,
    *,
    beta: float | Array = 0.1,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""ORPO, Odds Ratio Preference Optimisation (Hong et al., 2024, eqs. 4–7): the chosen
    completion's negative log-likelihood plus an odds-ratio penalty, no reference model.

    With :math:`a = \log P(y_c|x)` and :math:`b = \log P(y_r|x)` the mean token
    log-probabilities and :math:`\mathrm{odds}(p) = p/(1-p)`,

    .. math::
        \log\mathrm{OR} = (a - b) - (\log(1 - e^{a}) - \log(1 - e^{b})), \qquad
        \ell = -a - \lambda \log\sigma(\log\mathrm{OR}).

    Gradients (``argnums`` 0, 1), with :math:`s = \sigma(-\log\mathrm{OR})`:
    :math:`\partial\ell/\partial a = -1 - \lambda s / (1 - e^{a})`,
    :math:`\partial\ell/\partial b = \lambda s / (1 - e^{b})`.

    Args:
      policy_chosen_logps, policy_rejected_logps: the mean log-probability of each completion's
        tokens under the policy (:math:`\le 0`), any shape (typically ``(batch,)``).
      beta: :math:`\lambda > 0`, the weight of the odds-ratio term (default 0.1; TRL calls it
        ``beta`` too).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (one value per pair).
      where: optional boolean mask over the pairs.

    TRL's ``ORPOTrainer`` takes the NLL term as the token mean over the whole batch; with
    chosen completions of equal length that is the mean of :math:`-a` here (same numbers).  A
    log-probability of exactly 0 (probability 1) has infinite odds; values above 0 are refused.
    """
    arrays = {"policy_chosen_logps": policy_chosen_logps, "policy_rejected_logps": policy_rejected_logps}
    xp = namespace(**arrays, where=where)
    out_dtype, dtype = _check_log_probs(xp, arrays)
    for name, a in arrays.items():
        _check_nonpositive(xp, a, name)
    beta = check_hyperparameter(beta, "beta", like=policy_chosen_logps, low=0.0, low_inclusive=False)
    a, b = (cast(xp, v, dtype) for v in arrays.values())
    log_odds_rejected = b - _log1mexp(xp, b)
    log_odds = (a - _log1mexp(xp, a)) - log_odds_rejected
    value = -a + beta * numerics.softplus(xp, -log_odds)
    reducer = make_reducer(xp, reduction, tuple(a.shape), dtype, where=where)
    grads = {}
    if 0 in wrt:
        # d logOR / da = 1 / (1 - e^a), so d loss / da = -1 - lambda sigmoid(-logOR) / (1 - e^a).
        # With sigmoid(-logOR) = 1 / (1 + odds_c / odds_r) and odds_c (1 - e^a) = e^a, the second
        # factor is 1 / ((1 - e^a) + e^a / odds_r): finite as a -> 0 (probability 1), where
        # sigmoid(-logOR) / (1 - e^a) would be 0 / 0
        grads[0] = reducer.grad(-1.0 - beta / (-xp.expm1(a) + xp.exp(a - log_odds_rejected)))
    if 1 in wrt:
        # d logOR / db = -1 / (1 - e^b): infinite as b -> 0, as the loss's slope truly is
        grads[1] = reducer.grad(beta * numerics.sigmoid(xp, -log_odds) / -xp.expm1(b))
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="preference",
    input_space="log-probabilities",
    formula="-log sigmoid(beta (pi_c - pi_r)) - alpha pi_c / |y_c|",
)
@loss_function
def cpo(
    policy_chosen_logps: Array,
    policy_rejected_logps: Array,
    *,
    beta: float | Array = 0.1,
    alpha: float | Array = 1.0,
    label_smoothing: float = 0.0,
    chosen_lengths: Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""CPO, Contrastive Preference Optimisation (Xu et al., 2024, eq. 3 plus the NLL term of
    their eq. 4): DPO's sigmoid on the policy's own margin, with no reference model, plus the
    chosen completion's negative log-likelihood,

    .. math::
        \ell = -\log\sigma\big(\beta(\log\pi(y_c|x) - \log\pi(y_r|x))\big)
               - \alpha \frac{\log\pi(y_c|x)}{|y_c|}.

    ``label_smoothing`` :math:`\epsilon` makes the first term
    :math:`-(1-\epsilon)\log\sigma(z) - \epsilon\log\sigma(-z)` as in conservative DPO.

    Gradients (``argnums`` 0, 1): :math:`\beta\,\partial\ell/\partial z - \alpha/|y_c|` and
    :math:`-\beta\,\partial\ell/\partial z`.

    Args:
      policy_chosen_logps, policy_rejected_logps: summed log-probabilities of each completion
        under the policy, any shape (typically ``(batch,)``).
      beta: :math:`\beta > 0` (default 0.1).
      alpha: :math:`\alpha`, the weight of the NLL term (default 1.0, TRL's ``cpo_alpha``).
      label_smoothing: :math:`\epsilon \in [0, 1/2]` (default 0).
      chosen_lengths: optional token counts :math:`|y_c|` (> 0): the NLL term is then the
        per-token mean, as in TRL; without them it is the sequence NLL of the paper.
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (one value per pair).
      where: optional boolean mask over the pairs.

    TRL's ``CPOTrainer`` (``loss_type="sigmoid"``) takes the NLL as the token mean over the
    whole batch; with ``chosen_lengths`` of one value that is the mean here (same numbers).
    """
    arrays = {"policy_chosen_logps": policy_chosen_logps, "policy_rejected_logps": policy_rejected_logps}
    xp = namespace(**arrays, chosen_lengths=chosen_lengths, where=where)
    out_dtype, dtype = _check_log_probs(xp, arrays)
    eps = _check_label_smoothing(label_smoothing, robust=False)
    beta = check_hyperparameter(beta, "beta", like=policy_chosen_logps, low=0.0, low_inclusive=False)
    alpha = check_hyperparameter(alpha, "alpha", like=policy_chosen_logps, low=0.0)
    nc = _lengths(xp, chosen_lengths, policy_chosen_logps, "chosen_lengths", "policy_chosen_logps", dtype)
    pc, pr = (cast(xp, a, dtype) for a in arrays.values())
    pref, slope = _smoothed_sigmoid(xp, beta * (pc - pr), eps, robust=False)
    nll_scale = alpha if nc is None else alpha / nc
    value = pref - nll_scale * pc
    reducer = make_reducer(xp, reduction, tuple(pc.shape), dtype, where=where)
    grads = {}
    if 0 in wrt:
        grads[0] = reducer.grad(beta * slope - nll_scale * xp.ones_like(pc))
    if 1 in wrt:
        grads[1] = reducer.grad(-beta * slope)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="preference",
    input_space="log-probabilities",
    formula="w_D (1 - sigmoid(beta (r - z))) if desirable else w_U (1 - sigmoid(beta (z - r))), r = pi - ref",
)
@loss_function
def kto(
    policy_logps: Array,
    reference_logps: Array,
    desirable: Array,
    *,
    policy_kl_logps: Array | None = None,
    reference_kl_logps: Array | None = None,
    beta: float | Array = 0.1,
    desirable_weight: float | Array = 1.0,
    undesirable_weight: float | Array = 1.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""KTO, Kahneman–Tversky Optimisation (Ethayarajh et al., 2024, eq. 7): unpaired
    completions, each labelled desirable or undesirable, valued against a reference point.

    With the implied reward :math:`r = \log\pi(y|x) - \log\pi_{ref}(y|x)` and the reference
    point :math:`z_{ref}`,

    .. math::
        \ell = \begin{cases}
          \lambda_D\,(1 - \sigma(\beta(r - z_{ref}))) & y \text{ desirable} \\
          \lambda_U\,(1 - \sigma(\beta(z_{ref} - r))) & y \text{ undesirable.}
        \end{cases}

    :math:`z_{ref}` estimates :math:`\mathrm{KL}(\pi\,\|\,\pi_{ref})` from mismatched pairs (each
    prompt with another example's completion) as TRL does:
    :math:`z_{ref} = \max(0, \mathrm{mean}(\log\pi(y'|x) - \log\pi_{ref}(y'|x)))`, treated as a
    constant (no gradient flows through it).  Without the mismatched log-probabilities,
    :math:`z_{ref} = 0`.

    Gradients (``argnums`` 0, 1): with :math:`s = \sigma(\beta(r - z))`,
    :math:`\mp\lambda\beta s(1-s)` for desirable and :math:`\pm\lambda\beta s(1-s)` for
    undesirable completions (upper sign for ``policy_logps``).

    Args:
      policy_logps, reference_logps: summed log-probabilities of each completion under the
        policy and the reference, any shape (typically ``(batch,)``).
      desirable: boolean array of the same shape, True for a desirable completion.
      policy_kl_logps, reference_kl_logps: optional log-probabilities of the mismatched
        completions under the policy and the reference (both or neither; any common shape).
      beta: :math:`\beta > 0` (default 0.1).
      desirable_weight, undesirable_weight: :math:`\lambda_D, \lambda_U \ge 0` (default 1).
      reduction: ``"mean"`` (default, over all completions), ``"sum"``, ``"none"``.
      where: optional boolean mask over the completions.

    Equivalent: TRL's ``KTOTrainer`` (``loss_type="kto"``), whose loss is the mean over the
    batch's desirable and undesirable completions together (same numbers).
    """
    arrays = {"policy_logps": policy_logps, "reference_logps": reference_logps}
    xp = namespace(
        **arrays,
        desirable=desirable,
        policy_kl_logps=policy_kl_logps,
        reference_kl_logps=reference_kl_logps,
        where=where,
    )
    out_dtype, dtype = _check_log_probs(xp, arrays)
    if not xp.isdtype(desirable.dtype, "bool"):
        raise TypeError(
            "desirable must be a boolean array (True for a desirable completion); "
            f"got dtype {desirable.dtype}"
        )
    check_same_shape(policy_logps, desirable, "policy_logps", "desirable")
    if (policy_kl_logps is None) != (reference_kl_logps is None):
        raise ValueError("policy_kl_logps and reference_kl_logps must be given together (or neither)")
    beta = check_hyperparameter(beta, "beta", like=policy_logps, low=0.0, low_inclusive=False)
    w_d = check_hyperparameter(desirable_weight, "desirable_weight", like=policy_logps, low=0.0)
    w_u = check_hyperparameter(undesirable_weight, "undesirable_weight", like=policy_logps, low=0.0)
    check_mask(xp, where, tuple(policy_logps.shape), "policy_logps")
    pi, ref = (cast(xp, a, dtype) for a in arrays.values())
    reward = pi - ref
    if policy_kl_logps is None:
        z = xp.zeros((), dtype=dtype)
    else:
        check_float_array(xp, policy_kl_logps, "policy_kl_logps")
        check_float_array(xp, reference_kl_logps, "reference_kl_logps")
        check_same_shape(policy_kl_logps, reference_kl_logps, "policy_kl_logps", "reference_kl_logps")
        check_nonempty(policy_kl_logps, "policy_kl_logps")
        kl = xp.mean(cast(xp, policy_kl_logps, dtype) - cast(xp, reference_kl_logps, dtype))
        z = stop_gradient(xp.maximum(kl, xp.zeros_like(kl)))
    # sign +1 for a desirable completion, -1 for an undesirable one: loss = w (1 - sigmoid(sign beta (r - z)))
    one = xp.ones_like(reward)
    sign = xp.where(desirable, one, -one)
    weight = xp.where(desirable, w_d * one, w_u * one)
    u = sign * beta * (reward - z)
    miss = numerics.sigmoid(xp, -u)  # 1 - sigmoid(u), without the cancellation as sigmoid(u) -> 1
    value = weight * miss
    reducer = make_reducer(xp, reduction, tuple(pi.shape), dtype, where=where)
    grads = {}
    if wrt:
        g = reducer.grad(-weight * sign * beta * numerics.sigmoid(xp, u) * miss)
        if 0 in wrt:
            grads[0] = g
        if 1 in wrt:
            grads[1] = -g
    return finish(xp, out_dtype, reducer.value(value), grads)
