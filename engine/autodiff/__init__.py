"""Home-made reverse-mode automatic differentiation on numpy (see `tensor.Tensor`)."""

from engine.autodiff.tensor import (
    Tensor,
    absolute,
    as_tensor,
    batch_norm,
    cos,
    exp,
    log,
    log_softmax,
    relu,
    sigmoid,
    sin,
    sqrt,
    tanh,
    topological_order,
)

__all__ = [
    "Tensor",
    "absolute",
    "as_tensor",
    "batch_norm",
    "cos",
    "exp",
    "log",
    "log_softmax",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "tanh",
    "topological_order",
]
