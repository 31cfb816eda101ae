"""Small datasets for the demo, generated deterministically in code (nothing is downloaded and
no file is shipped, so there is no licence to track).

- :func:`character_chain`: text over a 27-symbol alphabet (``.`` and ``a``-``z``) drawn from a
  fixed random second-order Markov chain.  The task is next-character prediction, a 27-class
  problem whose uniform-guess loss is ln 27 = 3.2958 nats and whose best achievable loss is the
  chain's own conditional entropy (returned as ``oracle_loss``).
- :func:`waves`: a 2-D regression problem, ``y = sin(2 x1) + 0.5 x2^2 - 0.3 x1 x2 + noise``,
  whose best achievable MSE is the noise variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ALPHABET", "Split", "character_chain", "waves"]

ALPHABET = "." + "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Split:
    """Inputs, targets and the best achievable loss on them (``oracle_loss``)."""

    x: np.ndarray
    y: np.ndarray
    oracle_loss: float


def _chain_logits(rng: np.random.Generator, k: int) -> np.ndarray:
    # next-symbol logits given (two back, one back): a strong first-order part and a weaker
    # second-order part, so a model gains from both context symbols
    first = rng.normal(0.0, 2.2, size=(k, k))
    second = rng.normal(0.0, 1.2, size=(k, k))
    return second[:, None, :] + first[None, :, :]


def character_chain(n_train: int = 40_000, n_val: int = 8_000, *, seed: int = 0) -> tuple[Split, Split, str]:
    """Next-character data from a fixed second-order Markov chain over :data:`ALPHABET`.

    Returns ``(train, val, sample_text)``.  ``x`` holds the two previous symbols as integer
    indices, shape ``(n, 2)``; ``y`` the next symbol, shape ``(n,)``; ``oracle_loss`` is the mean
    cross-entropy of the true chain on that split (in nats).  Same ``seed``, same data.
    """
    k = len(ALPHABET)
    rng = np.random.default_rng(seed)
    logits = _chain_logits(rng, k)
    top = logits.max(axis=-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    cdf = np.cumsum(np.exp(logp), axis=-1)
    n = n_train + n_val + 2
    seq = np.empty(n, dtype=np.int64)
    seq[:2] = 0
    u = rng.random(n)
    for i in range(2, n):
        row = cdf[seq[i - 2], seq[i - 1]]
        seq[i] = min(int(np.searchsorted(row, u[i] * row[-1], side="right")), k - 1)
    x = np.stack([seq[:-2], seq[1:-1]], axis=1)
    y = seq[2:]
    nll = -logp[x[:, 0], x[:, 1], y]

    def split(a: int, b: int) -> Split:
        return Split(x[a:b], y[a:b], float(nll[a:b].mean()))

    text = "".join(ALPHABET[i] for i in seq[2:202])
    return split(0, n_train), split(n_train, n_train + n_val), text


def waves(
    n_train: int = 4_000, n_val: int = 1_000, *, noise: float = 0.1, seed: int = 0
) -> tuple[Split, Split]:
    """A smooth 2-D regression target with Gaussian noise of standard deviation ``noise``.

    ``x`` has shape ``(n, 2)`` (uniform on [-2, 2]^2), ``y`` shape ``(n, 1)``; ``oracle_loss``
    is the MSE of the noise-free function on that split (about ``noise**2``).
    """
    rng = np.random.default_rng(seed + 1)
    n = n_train + n_val
    x = rng.uniform(-2.0, 2.0, size=(n, 2))
    clean = np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] ** 2 - 0.3 * x[:, 0] * x[:, 1]
    y = (clean + rng.normal(0.0, noise, size=n))[:, None]
    err = (y[:, 0] - clean) ** 2

    def split(a: int, b: int) -> Split:
        return Split(x[a:b], y[a:b], float(err[a:b].mean()))

    return split(0, n_train), split(n_train, n)
