"""Worked examples of distillation from hidden states (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "linear_distillation": """\
rng = np.random.default_rng(0)
tokens, vocab = 6, 50
student_hidden, student_head = rng.normal(size=(tokens, 16)), rng.normal(size=(vocab, 16)) * 0.3
teacher_hidden, teacher_head = rng.normal(size=(tokens, 32)), rng.normal(size=(vocab, 32)) * 0.3
for divergence in ("forward_kl", "reverse_kl", "jsd"):
    loss = lk.linear_distillation(
        student_hidden, student_head, teacher_hidden, teacher_head, divergence=divergence, temperature=2.0
    )
    print(divergence, round(float(loss), 4))
# the gradient reaches the student's hidden states and head (the teacher is constant)
loss, (g_hidden, g_head) = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1))(
    student_hidden, student_head, teacher_hidden, teacher_head, divergence="jsd", beta=0.5
)
print(g_hidden.shape, g_head.shape)
""",
}
