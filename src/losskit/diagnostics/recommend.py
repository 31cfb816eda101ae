"""Which output layer and loss a task wants, why, its baseline, and the mistakes people make."""

from __future__ import annotations

import html
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

from .baseline import TASKS

__all__ = ["Recommendation", "recommend", "TASKS", "TASK_ALIASES"]

# other names people give the tasks -> the task
TASK_ALIASES = {
    "classification": "multiclass",
    "multi_class": "multiclass",
    "multi_label": "multilabel",
    "binary_classification": "binary",
    "soft_targets": "distribution",
    "language_modeling": "sequence",
    "language_model": "sequence",
}


@dataclass(frozen=True)
class Recommendation:
    """What :func:`recommend` returns.

    Attributes:
      task: the task name.
      output_layer: what the network's last layer should produce.
      loss: the losskit call to use (logits form where one exists).
      why: the reasoning, in a sentence or two.
      baseline: the loss of a constant guess for this task (see :func:`losskit.baseline_loss`).
      mistakes: common mistakes with this task's loss.
      alternatives: other reasonable choices and when to prefer them.
      also_in_losskit: catalogued losskit losses of the matching family.
    """

    task: str
    output_layer: str
    loss: str
    why: str
    baseline: str
    mistakes: tuple[str, ...]
    alternatives: tuple[str, ...] = ()
    also_in_losskit: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mistakes"] = list(self.mistakes)
        d["alternatives"] = list(self.alternatives)
        d["also_in_losskit"] = list(self.also_in_losskit)
        return d

    def __str__(self) -> str:
        """The recommendation as ``losskit recommend`` prints it."""

        def wrap(text: str, first: str = "    ", rest: str = "    ") -> str:
            return textwrap.fill(text, width=100, initial_indent=first, subsequent_indent=rest)

        lines = [
            f"task: {self.task}",
            f"  output layer: {self.output_layer}",
            f"  loss:         {self.loss}",
            "  why:",
            wrap(self.why),
            f"  baseline:     {self.baseline}",
            "  common mistakes:",
        ]
        lines += [wrap(m, "    - ", "      ") for m in self.mistakes]
        if self.alternatives:
            lines.append("  alternatives:")
            lines += [f"    - {a}" for a in self.alternatives]
        if self.also_in_losskit:
            lines.append(f"  in losskit's catalog for this family: {', '.join(self.also_in_losskit)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Recommendation(task={self.task!r}, loss={self.loss!r})"

    def _repr_markdown_(self) -> str:
        lines = [
            f"**{self.task}**",
            "",
            f"- *output layer*: {self.output_layer}",
            f"- *loss*: `{self.loss}`",
            f"- *why*: {self.why}",
            f"- *baseline*: {self.baseline}",
            "",
            "Common mistakes:",
            "",
        ]
        lines += [f"- {m}" for m in self.mistakes]
        if self.alternatives:
            lines += ["", "Alternatives:", ""] + [f"- {a}" for a in self.alternatives]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape

        def items(xs: tuple[str, ...]) -> str:
            return "<ul>" + "".join(f"<li>{e(x)}</li>" for x in xs) + "</ul>"

        alternatives = f"<p>Alternatives:</p>{items(self.alternatives)}" if self.alternatives else ""
        return (
            f'<div class="losskit-recommendation"><p><strong>{e(self.task)}</strong></p><table>'
            f'<tr><th style="text-align:left">output layer</th><td>{e(self.output_layer)}</td></tr>'
            f'<tr><th style="text-align:left">loss</th><td><code>{e(self.loss)}</code></td></tr>'
            f'<tr><th style="text-align:left">why</th><td>{e(self.why)}</td></tr>'
            f'<tr><th style="text-align:left">baseline</th><td>{e(self.baseline)}</td></tr></table>'
            f"<p>Common mistakes:</p>{items(self.mistakes)}{alternatives}</div>"
        )


_SOFTMAX_TWICE = (
    "Applying softmax (or log_softmax) before cross_entropy: it expects raw logits and applies "
    "log_softmax itself; the doubled softmax squashes the gradients and training crawls."
)

# task -> (output layer, loss, why, baseline, mistakes, alternatives, catalog family)
_TABLE: dict[str, tuple[str, str, str, str, tuple[str, ...], tuple[str, ...], str | None]] = {
    "regression": (
        "a linear layer (no activation), one unit per target; standardise the targets",
        "losskit.mse(pred, y)",
        "Squared error is the negative log-likelihood of Gaussian noise: its minimiser is the "
        "conditional mean, and its gradient 2(pred - y)/n is proportional to the error.",
        "the variance of the targets (predicting their mean); 1.0 for standardised targets",
        (
            "Putting a sigmoid/ReLU on the output, which caps or clips the predictions.",
            "Unscaled targets (e.g. prices in the thousands): the starting loss is huge and the "
            "learning rate has to be tiny; standardise and un-standardise.",
            "Shapes (N, 1) against (N,): PyTorch broadcasts them to (N, N) silently; losskit refuses.",
            "Using MSE when the data has outliers: they dominate the gradient.",
        ),
        (
            "losskit.huber / losskit.smooth_l1 when there are outliers",
            "losskit.mae for the conditional median (robust, but a constant-size gradient)",
        ),
        "regression",
    ),
    "binary": (
        "one logit per example (a linear layer with 1 unit, no sigmoid)",
        "losskit.binary_cross_entropy_with_logits(logit, y)",
        "Sigmoid and the log-loss fused on the logit is exact and stable where a separate sigmoid "
        "would round to 0 or 1, and its gradient is simply sigmoid(logit) - y.",
        "ln 2 = 0.6931 nats for balanced classes; the binary entropy of the positive rate otherwise",
        (
            "Applying a sigmoid and then binary_cross_entropy on probabilities: it loses precision "
            "for confident predictions; feed logits to the *_with_logits form.",
            "Using a 2-unit softmax and a 1-unit sigmoid interchangeably without changing the loss.",
            "Ignoring class imbalance: use pos_weight = negatives / positives, or class weights.",
        ),
        ("losskit.cross_entropy with 2 logits (equivalent, twice the parameters)",),
        "classification",
    ),
    "multiclass": (
        "K logits (a linear layer with K units, no softmax)",
        "losskit.cross_entropy(logits, class_index)",
        "Softmax cross-entropy is the negative log-likelihood of the right class; on logits its "
        "gradient is softmax(logits) - one_hot(target), which never vanishes while the answer is wrong.",
        "ln K nats for a uniform guess (ln 27 = 3.2958); the entropy of the class frequencies for "
        "imbalanced data",
        (
            _SOFTMAX_TWICE,
            "A starting loss far above ln K: over-confident initialisation; scale down the output "
            "layer's weights (e.g. by 0.01) and zero its bias.",
            "Float class indices, or one-hot targets where indices were meant (both work in losskit, "
            "but mean different things with label smoothing and weights).",
            "Forgetting axis=1 for PyTorch's (N, C, ...) layout: losskit's class axis is the last one.",
        ),
        (
            "label_smoothing=0.1 to temper over-confidence",
            "weight= class weights for imbalanced classes",
        ),
        "classification",
    ),
    "multilabel": (
        "L logits, one per label (no sigmoid, no softmax: labels are independent)",
        "losskit.binary_cross_entropy_with_logits(logits, y)  # y of shape (N, L) in {0, 1}",
        "Each label is its own yes/no question, so each gets a sigmoid and a binary log-loss; a "
        "softmax would force the labels to compete.",
        "ln 2 per label when balanced; the mean binary entropy of each label's positive rate otherwise",
        (
            "Using softmax + cross_entropy: the probabilities must then sum to 1 across labels.",
            "Rare labels: the loss is dominated by easy negatives; use pos_weight per label.",
            "Thresholding at 0.5 by habit: tune the threshold per label on validation data.",
        ),
        ("a focal loss when positives are very rare",),
        "classification",
    ),
    "distribution": (
        "K logits; the target is a probability distribution (soft labels, teacher outputs)",
        "losskit.cross_entropy(logits, target_probs)  # or kl_div(log_softmax(logits), target_probs)",
        "Cross-entropy against soft targets and KL divergence differ only by the targets' entropy, a "
        "constant, so they have the same gradient; KL reads 0 at a perfect match, which is easier to "
        "interpret.",
        "ln K for a uniform guess under cross-entropy; the mean KL to the average target under KL",
        (
            "kl_div with reduction='mean' (PyTorch's default) divides by the number of classes too; "
            "use 'batchmean' (losskit's default) for the true KL per example.",
            "Passing probabilities instead of log-probabilities as kl_div's input (it expects log p).",
            "Swapping kl_div's arguments: input is the model's log p, target is the reference q.",
            "Distillation: scale the loss by T^2 when both distributions are softened by temperature T.",
        ),
        ("losskit.kl_div(log_p, log_q, log_target=True) when the targets are in log space",),
        "divergence",
    ),
    "contrastive": (
        "an embedding per example, L2-normalised; similarities divided by a temperature",
        "losskit.cross_entropy(similarity / temperature, positives)  # InfoNCE",
        "InfoNCE treats each anchor's positive as the right class among the batch's candidates, so "
        "it is softmax cross-entropy over similarities: more negatives make a tighter bound.",
        "ln N nats for N candidates per anchor (chance: picking the positive at random)",
        (
            "Forgetting to normalise embeddings: similarities grow without bound and the loss "
            "collapses to zero without learning anything useful.",
            "A temperature that is too high (blurry) or too low (unstable); 0.05-0.2 is typical.",
            "Small batches: few negatives make the task easy and the representation weak.",
        ),
        ("a triplet or margin loss when explicit (anchor, positive, negative) triples exist",),
        "contrastive",
    ),
    "ranking": (
        "one score per item (a linear unit, no activation)",
        "losskit.binary_cross_entropy_with_logits(s_i - s_j, 1.0)  # pairwise, RankNet",
        "Ranking needs only the order of scores: a logistic loss on score differences of ordered "
        "pairs pushes the better item up; a listwise softmax cross-entropy over a query's items "
        "(cross_entropy with relevance-derived probabilities) is the listwise version.",
        "ln 2 per pair for random scores; ln n for a listwise softmax over n items",
        (
            "Training a regression loss on relevance labels: it spends capacity on absolute values "
            "the ranking never uses.",
            "Mixing items of different queries in one listwise softmax.",
            "Evaluating with the loss instead of NDCG/MRR.",
        ),
        ("a margin (hinge) ranking loss", "losskit.cross_entropy with soft targets (ListNet)"),
        "ranking",
    ),
    "segmentation": (
        "K logits per pixel, layout (N, K, H, W)",
        "losskit.cross_entropy(logits, mask, axis=1)  # mask: (N, H, W) class indices",
        "Per-pixel classification: softmax cross-entropy at every pixel, averaged over counted "
        "pixels; ignore_index skips unlabelled pixels.",
        "ln K per pixel for a uniform guess; the entropy of the pixel class frequencies otherwise",
        (
            "Forgetting axis=1 (losskit's default class axis is the last one).",
            "Small objects: the background dominates the mean; add a Dice loss or class weights.",
            _SOFTMAX_TWICE,
        ),
        ("cross-entropy plus a soft Dice loss for small structures",),
        "segmentation",
    ),
    "sequence": (
        "vocabulary logits at every position, shape [batch, seq, vocab]",
        "losskit.cross_entropy(logits, next_tokens, ignore_index=pad_id)",
        "Next-token prediction is classification over the vocabulary at each position; the mean "
        "over real tokens is the per-token log-loss, whose exp is the perplexity.",
        "ln V nats per token for a uniform guess over V tokens (ln 27 = 3.2958 for characters)",
        (
            "Counting padding tokens in the mean: set ignore_index (or where=) for them.",
            "Off-by-one targets: the target at position t is the input at t + 1.",
            "Under gradient accumulation, averaging per micro-batch weighs short batches more; use "
            "normalizer= with the global token count.",
            "Comparing losses of models with different tokenizers: compare bits per character.",
        ),
        ("label_smoothing for large vocabularies", "z_loss= to keep the logits' normaliser near 0"),
        "sequence",
    ),
}


def recommend(task: str) -> Recommendation:
    """The output layer and loss for ``task``, why, its baseline and the common mistakes.

    Args:
      task: one of ``regression``, ``binary``, ``multiclass``, ``multilabel``,
        ``distribution`` (soft targets), ``contrastive``, ``ranking``, ``segmentation``,
        ``sequence``.

    Returns:
      A :class:`Recommendation`; ``also_in_losskit`` lists the catalogued losses of the task's
      family (see :func:`losskit.catalog`).
    """
    if not isinstance(task, str):
        raise TypeError(f"task must be a string; got {type(task).__name__}")
    key = task.strip().lower().replace("-", "_")
    key = TASK_ALIASES.get(key, key)
    if key not in _TABLE:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    output, loss, why, baseline, mistakes, alternatives, family = _TABLE[key]
    from ..core.catalog import catalog

    also = tuple(info.name for info in catalog() if info.family == family) if family else ()
    return Recommendation(key, output, loss, why, baseline, mistakes, alternatives, also)
