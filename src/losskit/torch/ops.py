"""PyTorch's spelling of the primitives the core asks for through :mod:`losskit.core.dispatch`."""

from __future__ import annotations

import contextlib
import types
from typing import Any

import array_api_compat
import torch
from torch._subclasses.fake_tensor import FakeTensor

__all__ = ["stop_gradient", "is_concrete", "is_tracing", "namespace", "device_scope", "XP"]


def _namespace() -> types.ModuleType:
    compat = array_api_compat.array_namespace(torch.empty(0))
    xp = types.ModuleType("losskit.torch.xp", compat.__doc__)
    xp.__dict__.update({k: v for k, v in vars(compat).items() if not k.startswith("__")})
    # torch.moveaxis has no batching rule under torch.func.vmap; movedim is the same function
    xp.moveaxis = torch.movedim
    return xp


XP = _namespace()


def namespace(x: object) -> types.ModuleType | None:
    """The ``("namespace", "torch")`` fast path: for a tensor, the array-API namespace of torch
    tensors (``array_api_compat``'s, with ``moveaxis`` spelled ``torch.movedim``, which
    ``vmap`` can batch), resolved once rather than per call, so ``torch.compile`` has nothing
    to trace; ``None`` for anything else of torch's (a ``torch.Size``, a dtype)."""
    return XP if isinstance(x, torch.Tensor) else None


def stop_gradient(x: torch.Tensor) -> torch.Tensor:
    """``Tensor.detach``: the ``("stop_gradient", "torch")`` fast path."""
    return x.detach()


def is_tracing() -> bool:
    """True while ``torch.compile`` (Dynamo), ``torch.export`` or ``torch.jit.trace`` records a
    graph: the values of the tensors then stand for any input, so nothing may be read from
    them or decided on them in Python."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


def is_concrete(x: torch.Tensor) -> bool:
    """The ``("is_concrete", "torch")`` fast path: may a value check read ``x`` now?

    No while a graph is being traced (:func:`is_tracing`), for a fake tensor (the shape-only
    stand-ins of ``torch.compile``, ``torch.export`` and ``FakeTensorMode``), on the meta
    device (deferred initialisation), and for a tensor wrapped by a ``torch.func`` transform
    (``grad``, ``vmap``, ``jacrev``, ``functionalize``), whose values are per-sample or traced:
    reading them would fail (``.item()`` on a batched tensor) or bake one input into the graph.
    Shape, dtype and option checks do not ask and always run.
    """
    if is_tracing() or isinstance(x, FakeTensor) or x.device.type == "meta":
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


def device_scope(x: Any) -> contextlib.AbstractContextManager[Any]:
    """The ``("device_scope", "torch")`` fast path: for a tensor off the CPU (meta, CUDA, ...),
    torch's default-device context on that tensor's device, so that the tensors a loss creates
    without naming a device (class indices, masks, constants) land beside its inputs -- a meta
    input gives a meta result, a CUDA input no cross-device error; a no-op on CPU tensors
    (torch's default device already) and while a graph is traced."""
    if isinstance(x, torch.Tensor) and x.device.type != "cpu" and not is_tracing():
        return x.device
    return contextlib.nullcontext()
