"""losskit: the loss functions that train neural networks, on any array library.

Every loss takes arrays of NumPy, PyTorch, JAX, Dask or any Python-array-API library and
returns the caller's array type; every loss has an analytic gradient through
:func:`value_and_grad`.  :func:`catalog` lists them all.

The package is layered, and imports run one way (``tests/test_layering.py`` checks it):

- :mod:`losskit.core` — the backend seam, validation, reduction, gradients, catalog, shared
  numerics, the cross-entropy specifications and the fast-path registry;
- :mod:`losskit.losses` — the losses and output layers, one module per family, over the array
  API;
- :mod:`losskit.kernels` (NumPy/numba), :mod:`losskit.torch`, :mod:`losskit.jax` — fast paths,
  reached through :mod:`losskit.core.dispatch` (the table is :mod:`losskit.fast_paths`), and
  :mod:`losskit.evaluation` (Dask);
- :mod:`losskit.diagnostics`, :mod:`losskit.plotting`, :mod:`losskit.cli`, :mod:`losskit.demo`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import fast_paths  # noqa: F401  (registers the fast paths; imports no framework)
from .core.catalog import LossInfo, catalog, lookup
from .core.gradients import grad, value_and_grad
from .diagnostics import (
    baseline_loss,
    bits_per_byte,
    bits_per_character,
    bits_per_token,
    diagnose,
    explain,
    from_perplexity,
    perplexity,
    read_log,
    recommend,
    to_bits,
    to_nats,
)
from .evaluation import EvaluationError, evaluate  # imports Dask on first call, not here
from .losses.activations import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax, softplus, tanh
from .losses.boxes import ciou_loss, diou_loss, eiou_loss, giou_loss, iou_loss
from .losses.classification import (
    binary_brier,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    brier,
    cross_entropy,
    generalized_cross_entropy,
    nll,
    smooth_labels,
)
from .losses.contrastive import (
    circle,
    cosine_distance,
    cosine_embedding,
    info_nce,
    ntxent,
    supcon,
    triplet_margin,
    triplet_margin_with_distance,
)
from .losses.distillation import linear_distillation
from .losses.divergence import distillation_kl, generalized_kl, js_div, kl_div
from .losses.focal import poly1_cross_entropy, sigmoid_focal, softmax_focal
from .losses.images import charbonnier, general_robust, ms_ssim_loss, ssim_loss, total_variation
from .losses.linear_cross_entropy import linear_cross_entropy
from .losses.linear_preference import (
    linear_cpo,
    linear_dpo,
    linear_grpo,
    linear_kto,
    linear_orpo,
    linear_simpo,
)
from .losses.log_probs import linear_log_probs, linear_log_probs_vjp, sequence_log_probs
from .losses.margin import (
    hinge,
    hinge_embedding,
    multi_margin,
    multiclass_hinge,
    multiclass_perceptron,
    multilabel_margin,
    multilabel_soft_margin,
    perceptron,
    soft_margin,
    squared_hinge,
)
from .losses.metric_margin import arcface, cosface, proxy_anchor, proxy_nca, sphereface
from .losses.metric_pairs import (
    batch_hard_triplets,
    contrastive_pairs,
    lifted_structure,
    mined_triplet_margin,
    multi_similarity,
    n_pair,
    semi_hard_triplets,
)
from .losses.penalties import l1_penalty, l2_penalty
from .losses.policy import group_advantages, grpo
from .losses.preference import cpo, dpo, kto, orpo, simpo
from .losses.ranking import margin_ranking, ranking_softmax
from .losses.regression import (
    gaussian_nll,
    huber,
    l1,
    log_cosh,
    mae,
    mape,
    mse,
    msle,
    poisson_nll,
    quantile,
    smooth_l1,
    tweedie,
)
from .losses.segmentation import dice, jaccard, tversky
from .losses.segmentation_extra import generalized_dice, lovasz_hinge, lovasz_softmax
from .losses.sequence import ctc
from .losses.sparsemax import sparsemax, sparsemax_loss
from .losses.transport import sinkhorn, sinkhorn_divergence, sinkhorn_histograms

__all__ = [
    # the catalog and gradients
    "LossInfo",
    "catalog",
    "lookup",
    "grad",
    "value_and_grad",
    # output layers
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "softmax",
    "log_softmax",
    "logsumexp",
    "tanh",
    "sparsemax",
    # regression
    "mse",
    "mae",
    "l1",
    "huber",
    "smooth_l1",
    "poisson_nll",
    "gaussian_nll",
    "log_cosh",
    "quantile",
    "mape",
    "msle",
    "tweedie",
    # classification
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll",
    "generalized_cross_entropy",
    "brier",
    "binary_brier",
    "smooth_labels",
    "sigmoid_focal",
    "softmax_focal",
    "poly1_cross_entropy",
    "linear_cross_entropy",
    "linear_log_probs",
    "linear_log_probs_vjp",
    "sequence_log_probs",
    "hinge",
    "squared_hinge",
    "perceptron",
    "multiclass_hinge",
    "multiclass_perceptron",
    "hinge_embedding",
    "soft_margin",
    "multi_margin",
    "multilabel_margin",
    "multilabel_soft_margin",
    "sparsemax_loss",
    # divergences
    "kl_div",
    "js_div",
    "generalized_kl",
    "distillation_kl",
    "linear_distillation",
    # contrastive and ranking
    "triplet_margin",
    "triplet_margin_with_distance",
    "cosine_embedding",
    "cosine_distance",
    "info_nce",
    "ntxent",
    "supcon",
    "circle",
    "margin_ranking",
    "ranking_softmax",
    # metric learning: margin softmax and proxies
    "arcface",
    "cosface",
    "sphereface",
    "proxy_nca",
    "proxy_anchor",
    # metric learning: pairs, mined triplets and the miners
    "contrastive_pairs",
    "multi_similarity",
    "lifted_structure",
    "n_pair",
    "mined_triplet_margin",
    "batch_hard_triplets",
    "semi_hard_triplets",
    # segmentation, sequence, penalties
    "dice",
    "generalized_dice",
    "jaccard",
    "lovasz_hinge",
    "lovasz_softmax",
    "tversky",
    "ctc",
    "l1_penalty",
    "l2_penalty",
    # boxes
    "iou_loss",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
    "eiou_loss",
    # optimal transport
    "sinkhorn",
    "sinkhorn_divergence",
    "sinkhorn_histograms",
    # preference optimisation and policy gradients
    "dpo",
    "simpo",
    "orpo",
    "cpo",
    "kto",
    "grpo",
    "group_advantages",
    "linear_dpo",
    "linear_simpo",
    "linear_orpo",
    "linear_cpo",
    "linear_kto",
    "linear_grpo",
    # images
    "charbonnier",
    "general_robust",
    "total_variation",
    "ssim_loss",
    "ms_ssim_loss",
    # out-of-core evaluation
    "evaluate",
    "EvaluationError",
    # diagnostics (NumPy only: plots, log readers and progress bars import their libraries lazily)
    "baseline_loss",
    "bits_per_byte",
    "bits_per_character",
    "bits_per_token",
    "diagnose",
    "explain",
    "from_perplexity",
    "perplexity",
    "read_log",
    "recommend",
    "to_bits",
    "to_nats",
]

# with torch already imported, its fast paths are loaded now, so torch.compile finds them traced
fast_paths.load_for_tracing()
