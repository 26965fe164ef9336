"""Reverse-mode automatic differentiation over numpy arrays: the `Tensor` and its ops."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import Any

import numpy as np

# Every tensor gets the next number when it is made. An op's output is always made after its
# inputs, so sorting a graph's tensors by this number puts every node after its inputs.
_creation_counter = itertools.count()


Grads = tuple[np.ndarray | None, ...]
# An op's backward: the output's gradient -> each input's gradient (None: not needed).
Backward = Callable[[np.ndarray], Grads]


class Tensor:
    """An `np.ndarray` that remembers how it was computed, so gradients can flow back to it.

    Each op builds its output node, records its inputs and a small closure that maps the
    output's gradient to a tuple of its inputs' gradients (local derivative times the output's
    gradient; None where an input needs none and computing it would cost). `backward` walks the
    graph once and adds those up. The closure never refers to its output node, so a graph holds
    no reference cycle and is freed the moment the loss goes out of scope (no garbage-collector
    pauses). Tensors that require no gradient (data batches, constants) get neither parents nor
    closure, so they cost nothing in the backward pass.
    """

    # Let `ndarray @ Tensor`, `ndarray * Tensor`, ... fall through to our reflected operators.
    __array_ufunc__ = None
    __slots__ = (
        "data", "requires_grad", "label", "_grad", "_parents", "_inputs", "_backward", "_op",
        "_seq",
    )

    def __init__(self, data: Any, requires_grad: bool = False, label: str = "") -> None:
        array = data if isinstance(data, np.ndarray) else np.asarray(data)
        if array.dtype.kind != "f":  # gradients need a float type; ints and bools become float64
            array = array.astype(np.float64)
        self.data: np.ndarray = array
        self.requires_grad = requires_grad
        self.label = label
        self._grad: np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._inputs: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None
        self._op = ""
        self._seq = next(_creation_counter)

    # ----- construction helpers -------------------------------------------------------------

    @staticmethod
    def _result(data: np.ndarray, op: str, *inputs: Tensor) -> Tensor:
        """The output node of an op; it tracks the inputs only if one of them needs a gradient.

        (The hottest function of a training step: written for speed, no generator.)
        """
        out = Tensor.__new__(Tensor)
        # numpy returns scalars, not 0-d arrays, from ops on 0-d arrays and full reductions.
        out.data = data if type(data) is np.ndarray else np.asarray(data)
        out.label = ""
        out._grad = None
        out._op = op
        out._backward = None
        out._seq = next(_creation_counter)
        parents = inputs
        for t in inputs:
            if not t.requires_grad:
                parents = tuple([t for t in inputs if t.requires_grad])
                break
        out._parents = parents
        # All inputs, constants too, are kept for drawing the graph, but only where there is one.
        out._inputs = inputs if parents else ()
        out.requires_grad = bool(parents)
        return out

    def _lift(self, other: Any) -> Tensor:
        """`other` as a constant Tensor in this tensor's dtype where it is a number or int array."""
        if isinstance(other, Tensor):
            return other
        array = np.asarray(other)
        if array.dtype.kind != "f" or array.ndim == 0:
            # Python scalars and int arrays take our dtype, so float32 stays float32.
            array = array.astype(self.data.dtype)
        return Tensor(array)

    # ----- plain attributes -----------------------------------------------------------------

    @property
    def grad(self) -> np.ndarray:
        """dL/dself after `backward()`, same shape as `data`; zeros before."""
        if self._grad is None:
            self._grad = np.zeros_like(self.data)
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        self._grad = value

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def op(self) -> str:
        """Name of the op that produced this tensor ("" for a leaf)."""
        return self._op

    @property
    def parents(self) -> tuple[Tensor, ...]:
        """The inputs of the op that produced this tensor and that require a gradient."""
        return self._parents

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """All inputs of the op that produced this tensor, constants included, if it is tracked."""
        return self._inputs

    def item(self) -> float:
        return float(self.data)

    def zero_grad(self) -> None:
        """Forget this tensor's gradient (the next read of `grad` gives zeros)."""
        self._grad = None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    # ----- backward -------------------------------------------------------------------------

    def backward(self) -> None:
        """Fill `grad` of every tensor this scalar depends on with d(self)/d(tensor).

        Gradients are recomputed from scratch on each call (never added to an earlier call's),
        so calling it twice gives the same result; a node used many times gets the sum.
        """
        for _ in self.backward_visits():
            pass

    def backward_visits(self) -> Iterator[tuple[Tensor, Grads]]:
        """`backward()` one op node at a time, output first.

        Yields each visited node (its `grad` is final by then) with what it sent to its `inputs`
        (aligned with them, None for an input that needs no gradient), already added to them.
        """
        if self.data.size != 1:
            raise ValueError(f"backward() needs a scalar, got shape {self.shape}")
        order = topological_order(self)
        for node in order:
            node._grad = None
        self._grad = np.ones_like(self.data)
        for node in reversed(order):
            if node._backward is not None and node._grad is not None:
                sent = node.input_gradients(node._grad)
                for tensor, grad in zip(node._inputs, sent):  # noqa: B905 (aligned by construction)
                    if grad is not None:  # never in place: `grad` may be shared with a node
                        tensor._grad = grad if tensor._grad is None else tensor._grad + grad
                yield node, sent

    def input_gradients(self, grad: np.ndarray) -> Grads:
        """What this node's op sends back to each of its `inputs` when its own gradient is
        `grad` (shape of `data`): a gradient of each input's shape, None where one needs none.

        Raises ValueError if the op computed a gradient that cannot have its input's shape.
        """
        if self._backward is None:
            return tuple([None] * len(self._inputs))
        # (Runs for every node of every training step: a list comprehension, not a loop.)
        return tuple([
            None if g is None or not t.requires_grad else unbroadcast(g, t.data.shape)
            for t, g in zip(self._inputs, self._backward(grad), strict=True)
        ])

    # ----- arithmetic -----------------------------------------------------------------------
    # Each closure returns the gradient of each input in the output's (broadcast) shape;
    # `input_gradients` sums it back to the input's shape.

    def __add__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data + other.data, "+", self, other)
        if out.requires_grad:
            out._backward = lambda g: (g, g)
        return out

    def __sub__(self, other: Any) -> Tensor:
        return self + (-self._lift(other))

    def __mul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data * other.data, "*", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                return (g * other.data if self.requires_grad else None,
                        g * self.data if other.requires_grad else None)

            out._backward = backward
        return out

    def __truediv__(self, other: Any) -> Tensor:
        other = self._lift(other)
        quotient = self.data / other.data
        out = Tensor._result(quotient, "/", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                # d(a/b)/db = -a/b^2 = -out/b
                return (g / other.data if self.requires_grad else None,
                        -g * quotient / other.data if other.requires_grad else None)

            out._backward = backward
        return out

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, int | float) and not isinstance(exponent, bool):
            return self._power_by_constant(exponent)
        exponent = self._lift(exponent)
        power = self.data**exponent.data
        out = Tensor._result(power, "**", self, exponent)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                base_grad = exponent_grad = None
                if self.requires_grad:
                    base_grad = g * exponent.data * self.data ** (exponent.data - 1)
                if exponent.requires_grad:
                    # d(a^p)/dp = a^p log a: nan for a < 0, and 0 at a = 0 (the limit), as in jax
                    with np.errstate(divide="ignore", invalid="ignore"):
                        log_base = np.where(self.data == 0, 0, np.log(self.data))
                    exponent_grad = g * power * log_base
                return base_grad, exponent_grad

            out._backward = backward
        return out

    def _power_by_constant(self, p: float) -> Tensor:
        # The exponent rides along as a constant input, only so that drawings can show it.
        out = Tensor._result(self.data**p, "**", self, self._lift(p))
        if out.requires_grad:
            out._backward = lambda g: (g * (p * self.data ** (p - 1)), None)
        return out

    def __neg__(self) -> Tensor:
        out = Tensor._result(-self.data, "neg", self)
        if out.requires_grad:
            out._backward = lambda g: (-g,)
        return out

    def __matmul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data @ other.data, "@", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                a, b = self.data, other.data
                if a.ndim == 2 and b.ndim == 2:  # the common case, without reshapes or sums
                    return (g @ b.T if self.requires_grad else None,
                            a.T @ g if other.requires_grad else None)
                # Treat vectors as matrices (numpy's rule), so one formula serves every case.
                a2 = a[None, :] if a.ndim == 1 else a
                b2 = b[:, None] if b.ndim == 1 else b
                g2 = g.reshape(a2.shape[:-1] + b2.shape[-1:]) if (a.ndim == 1 or b.ndim == 1) else g
                ga = gb = None
                if self.requires_grad:
                    ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
                if other.requires_grad:
                    gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
                return ga, gb

            out._backward = backward
        return out

    def __radd__(self, other: Any) -> Tensor:
        return self._lift(other) + self

    def __rsub__(self, other: Any) -> Tensor:
        return self._lift(other) - self

    def __rmul__(self, other: Any) -> Tensor:
        return self._lift(other) * self

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._lift(other) / self

    def __rpow__(self, other: Any) -> Tensor:
        return self._lift(other) ** self

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._lift(other) @ self

    # ----- reductions -----------------------------------------------------------------------

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        kept = self.data.sum(axis=axis, keepdims=True)
        out = Tensor._result(drop_axes(kept, axis, keepdims), "sum", self)
        if out.requires_grad:
            out._backward = lambda g: (spread(g, kept.shape, self.data.shape),)
        return out

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        total = self.sum(axis=axis, keepdims=keepdims)
        return total * (total.data.size / self.data.size)  # times 1 / (number of elements)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        kept = self.data.max(axis=axis, keepdims=True)
        out = Tensor._result(drop_axes(kept, axis, keepdims), "max", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                # Ties share the gradient equally (as jax does).
                winners = (self.data == kept).astype(self.data.dtype)
                winners /= winners.sum(axis=axis, keepdims=True)
                return (winners * g.reshape(kept.shape),)

            out._backward = backward
        return out

    # ----- shape ----------------------------------------------------------------------------

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        out = Tensor._result(self.data.reshape(new_shape), "reshape", self)
        if out.requires_grad:
            out._backward = lambda g: (g.reshape(self.data.shape),)
        return out

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        order = axes[0] if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        order = tuple(order) if order else tuple(reversed(range(self.data.ndim)))
        out = Tensor._result(self.data.transpose(order), "transpose", self)
        if out.requires_grad:
            inverse = tuple(np.argsort(order))
            out._backward = lambda g: (g.transpose(inverse),)
        return out

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        out = Tensor._result(self.data[index], "index", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                full = np.zeros_like(self.data)
                np.add.at(full, index, g)  # repeated indices add up
                return (full,)

            out._backward = backward
        return out

    # ----- elementwise functions ------------------------------------------------------------

    def _unary(self, op: str, value: np.ndarray, local: Callable[[], np.ndarray]) -> Tensor:
        """An elementwise op whose derivative `local()` is evaluated only in the backward pass."""
        out = Tensor._result(value, op, self)
        if out.requires_grad:
            out._backward = lambda g: (g * local(),)
        return out

    def exp(self) -> Tensor:
        value = np.exp(self.data)
        return self._unary("exp", value, lambda: value)

    def log(self) -> Tensor:
        return self._unary("log", np.log(self.data), lambda: 1.0 / self.data)

    def tanh(self) -> Tensor:
        value = np.tanh(self.data)
        return self._unary("tanh", value, lambda: 1.0 - value * value)

    def sigmoid(self) -> Tensor:
        value = stable_sigmoid(self.data)
        return self._unary("sigmoid", value, lambda: value * (1.0 - value))

    def relu(self) -> Tensor:
        return self._unary("relu", np.maximum(self.data, 0), lambda: self.data > 0)

    def sin(self) -> Tensor:
        return self._unary("sin", np.sin(self.data), lambda: np.cos(self.data))

    def cos(self) -> Tensor:
        return self._unary("cos", np.cos(self.data), lambda: -np.sin(self.data))

    def sqrt(self) -> Tensor:
        value = np.sqrt(self.data)
        return self._unary("sqrt", value, lambda: 0.5 / value)

    def abs(self) -> Tensor:
        return self._unary("abs", np.abs(self.data), lambda: np.sign(self.data))

    def log_softmax(self, axis: int = -1) -> Tensor:
        """log(softmax(x)) along `axis`, computed stably (max subtracted) with a fused backward."""
        shifted = self.data - self.data.max(axis=axis, keepdims=True)
        out_data = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        out = Tensor._result(out_data, "log_softmax", self)
        if out.requires_grad:
            # dL/dx = g - softmax(x) * sum(g)
            out._backward = lambda g: (g - np.exp(out_data) * g.sum(axis=axis, keepdims=True),)
        return out

    def batch_norm(self, gamma: Any, beta: Any, epsilon: float) -> Tensor:
        """Batch normalisation in training mode (Ioffe and Szegedy 2015), with a fused backward.

        self: (batch, units); gamma, beta: (units,). Each unit is centred and scaled by its own
        mean and variance over the batch (the biased one, as in the paper), then multiplied by
        gamma and shifted by beta: out = gamma * xhat + beta, xhat = (x - mean) / sqrt(var + eps).
        """
        if self.data.ndim != 2:
            raise ValueError(f"batch_norm needs a (batch, units) input, got shape {self.shape}")
        gamma, beta = self._lift(gamma), self._lift(beta)
        centred = self.data - self.data.mean(axis=0)
        inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=0) + epsilon)
        xhat = centred * inv_std
        out = Tensor._result(xhat * gamma.data + beta.data, "batch_norm", self, gamma, beta)
        if out.requires_grad:

            def backward(g: np.ndarray) -> Grads:
                # Every x moves the batch's mean and variance too, hence the two sums:
                # dx = inv_std / N * (N dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)).
                dxhat = g * gamma.data
                n = len(xhat)
                dx = None
                if self.requires_grad:
                    dx = (inv_std / n) * (n * dxhat - dxhat.sum(axis=0)
                                          - xhat * (dxhat * xhat).sum(axis=0))
                return (dx, (g * xhat).sum(axis=0) if gamma.requires_grad else None,
                        g.sum(axis=0) if beta.requires_grad else None)

            out._backward = backward
        return out


# ----- helpers shared by the ops ----------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`grad` summed over the axes that broadcasting added or stretched: an array of `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"a gradient of shape {grad.shape} cannot belong to shape {shape}")
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"a gradient of shape {grad.shape} cannot belong to shape {shape}")
    return grad


def drop_axes(kept: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """A reduction's result computed with keepdims=True, shaped as the caller asked."""
    if keepdims:
        return kept
    return kept.reshape(()) if axis is None else kept.squeeze(axis)


def spread(grad: np.ndarray, kept_shape: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """A reduction's gradient copied back over the reduced axes: an array of `shape`.

    `kept_shape` is the reduction's shape with keepdims=True (1 on every reduced axis).
    """
    out = np.empty(shape, grad.dtype)
    out[...] = grad.reshape(kept_shape)
    return out


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor `root` depends on through grad-requiring links, each after its parents.

    Collects the graph without recursion (deep graphs are fine), then sorts it by creation.
    """
    found = {id(root): root}
    stack = [root]
    while stack:
        for parent in stack.pop()._parents:
            if id(parent) not in found:
                found[id(parent)] = parent
                stack.append(parent)
    return sorted(found.values(), key=attrgetter("_seq"))


def as_tensor(x: Any) -> Tensor:
    """`x` itself if it is a Tensor, else a constant Tensor holding it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def exp(x: Any) -> Tensor:
    return as_tensor(x).exp()


def log(x: Any) -> Tensor:
    return as_tensor(x).log()


def tanh(x: Any) -> Tensor:
    return as_tensor(x).tanh()


def sigmoid(x: Any) -> Tensor:
    return as_tensor(x).sigmoid()


def relu(x: Any) -> Tensor:
    return as_tensor(x).relu()


def sin(x: Any) -> Tensor:
    return as_tensor(x).sin()


def cos(x: Any) -> Tensor:
    return as_tensor(x).cos()


def sqrt(x: Any) -> Tensor:
    return as_tensor(x).sqrt()


def absolute(x: Any) -> Tensor:
    return as_tensor(x).abs()


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    return as_tensor(x).log_softmax(axis=axis)


def batch_norm(x: Any, gamma: Any, beta: Any, epsilon: float) -> Tensor:
    return as_tensor(x).batch_norm(gamma, beta, epsilon)
