"""Worked examples of the image losses (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "charbonnier": """\
prediction = np.array([0.0, 0.5, 3.0])
target = np.array([0.0, 0.0, 0.0])
print(lk.charbonnier(prediction, target, eps=0.1, reduction="none").round(4))
print(round(float(lk.charbonnier(prediction, target, eps=0.1)), 4))
""",
    "general_robust": """\
residual = np.array([0.5, 3.0])
zero = np.zeros(2)
for alpha in [2.0, 1.0, 0.0, -2.0, -np.inf]:  # L2/2, pseudo-Huber, Cauchy, Geman-McClure, Welsch
    print(alpha, lk.general_robust(residual, zero, alpha, reduction="none").round(4))
# the gradient with respect to a learnable shape alpha (argument 2)
value, d_alpha = lk.value_and_grad(lk.general_robust, argnums=2)(residual, zero, np.array(1.0))
print(round(float(value), 4), round(float(d_alpha), 4))
""",
    "total_variation": """\
image = np.array([[[0.0, 1.0, 1.0], [3.0, 1.0, 0.0]]])  # (C, H, W): one 2x3 channel
print(lk.total_variation(image, reduction="none"))  # down: 3 + 0 + 1, across: 1 + 0 + 2 + 1
""",
    "ssim_loss": """\
rng = np.random.default_rng(0)
image = rng.uniform(size=(1, 1, 16, 16))  # (N, C, H, W), values in [0, 1]
noisy = np.clip(image + 0.1 * rng.normal(size=image.shape), 0.0, 1.0)
print(round(float(lk.ssim_loss(image, image)), 4))
print(round(float(lk.ssim_loss(noisy, image, data_range=1.0)), 4))
""",
    "ms_ssim_loss": """\
rng = np.random.default_rng(0)
image = rng.uniform(size=(1, 1, 161, 161))  # 5 scales need more than 160 pixels a side
noisy = np.clip(image + 0.1 * rng.normal(size=image.shape), 0.0, 1.0)
print(round(float(lk.ms_ssim_loss(noisy, image)), 4))
""",
}
