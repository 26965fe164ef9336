"""Classification losses from logits and integer labels, written against a backend `Ops`.

Both return a scalar of the backend's kind (a jax scalar or a 0-d Tensor) so it can be
differentiated. Checked against `optax` in tests/engine/nn/test_losses.py.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.nn.layers import Array, Ops


def softmax_cross_entropy(ops: Ops, logits: Array, labels: Array) -> Array:
    """Mean over the batch of -log softmax(logits)[label].

    logits (batch, classes), labels (batch,) int -> scalar.
    """
    one_hot = ops.one_hot(labels, logits.shape[-1])
    # Picking the true class's log-probability by multiplying with its one-hot row keeps the
    # op set small (no gather) and is exactly as cheap for 10 classes.
    return -(ops.log_softmax(logits) * one_hot).sum(axis=-1).mean()


def mse_one_hot(ops: Ops, logits: Array, labels: Array) -> Array:
    """Squared error between softmax probabilities and the one-hot label, summed over the
    classes and averaged over the batch. logits (batch, classes), labels (batch,)."""
    one_hot = ops.one_hot(labels, logits.shape[-1])
    probabilities = ops.exp(ops.log_softmax(logits))
    return ((probabilities - one_hot) ** 2).sum(axis=-1).mean()


LOSSES: dict[str, Callable[[Ops, Array, Array], Array]] = {
    "cross_entropy": softmax_cross_entropy,
    "mse": mse_one_hot,
}


def loss_function(name: str) -> Callable[[Ops, Array, Array], Array]:
    """The loss called `name` ("cross_entropy" or "mse")."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
