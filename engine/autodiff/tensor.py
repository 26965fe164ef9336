"""Reverse-mode automatic differentiation over numpy arrays: the `Tensor` and its ops."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

# Every tensor gets the next number when it is made. An op's output is always made after its
# inputs, so sorting a graph's tensors by this number puts every node after its inputs.
_creation_counter = itertools.count()


class Tensor:
    """An `np.ndarray` that remembers how it was computed, so gradients can flow back to it.

    Each op builds its output node, records the parents that require a gradient and a small
    closure that adds the output's gradient (its argument), times the local derivative, into
    those parents. The closure never refers to its output node, so a graph holds no reference
    cycle and is freed the moment the loss goes out of scope (no garbage-collector pauses).
    Tensors that require no gradient (data batches, constants) get neither parents nor closure,
    so they cost nothing in the backward pass.
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
        self._backward: Callable[[np.ndarray], None] | None = None
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

    def _accumulate(self, grad: np.ndarray) -> None:
        """Add `grad` (already of this tensor's shape) to this tensor's gradient.

        Never in place: a gradient array may be shared with the node it came from.
        """
        self._grad = grad if self._grad is None else self._grad + grad

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
        if self.data.size != 1:
            raise ValueError(f"backward() needs a scalar, got shape {self.shape}")
        order = topological_order(self)
        for node in order:
            node._grad = None
        self._grad = np.ones_like(self.data)
        for node in reversed(order):
            if node._backward is not None and node._grad is not None:
                node._backward(node._grad)

    # ----- arithmetic -----------------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data + other.data, "+", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                if self.requires_grad:
                    self._accumulate(unbroadcast(g, self.data.shape))
                if other.requires_grad:
                    other._accumulate(unbroadcast(g, other.data.shape))

            out._backward = backward
        return out

    def __sub__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data - other.data, "-", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                if self.requires_grad:
                    self._accumulate(unbroadcast(g, self.data.shape))
                if other.requires_grad:
                    other._accumulate(unbroadcast(-g, other.data.shape))

            out._backward = backward
        return out

    def __mul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data * other.data, "*", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                if self.requires_grad:
                    self._accumulate(unbroadcast(g * other.data, self.data.shape))
                if other.requires_grad:
                    other._accumulate(unbroadcast(g * self.data, other.data.shape))

            out._backward = backward
        return out

    def __truediv__(self, other: Any) -> Tensor:
        other = self._lift(other)
        quotient = self.data / other.data
        out = Tensor._result(quotient, "/", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                if self.requires_grad:
                    self._accumulate(unbroadcast(g / other.data, self.data.shape))
                if other.requires_grad:
                    # d(a/b)/db = -a/b^2 = -out/b
                    other._accumulate(unbroadcast(-g * quotient / other.data, other.data.shape))

            out._backward = backward
        return out

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, int | float) and not isinstance(exponent, bool):
            return self._power_by_constant(exponent)
        exponent = self._lift(exponent)
        power = self.data**exponent.data
        out = Tensor._result(power, "**", self, exponent)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                if self.requires_grad:
                    local = exponent.data * self.data ** (exponent.data - 1)
                    self._accumulate(unbroadcast(g * local, self.data.shape))
                if exponent.requires_grad:
                    # d(a^p)/dp = a^p log a: nan for a < 0, and 0 at a = 0 (the limit), as in jax
                    with np.errstate(divide="ignore", invalid="ignore"):
                        log_base = np.where(self.data == 0, 0, np.log(self.data))
                    exponent._accumulate(unbroadcast(g * power * log_base, exponent.data.shape))

            out._backward = backward
        return out

    def _power_by_constant(self, p: float) -> Tensor:
        # The exponent rides along as a constant input, only so that drawings can show it.
        out = Tensor._result(self.data**p, "**", self, self._lift(p))
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                self._accumulate(g * (p * self.data ** (p - 1)))

            out._backward = backward
        return out

    def __neg__(self) -> Tensor:
        out = Tensor._result(-self.data, "neg", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                self._accumulate(-g)

            out._backward = backward
        return out

    def __matmul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        out = Tensor._result(self.data @ other.data, "@", self, other)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                a, b = self.data, other.data
                if a.ndim == 2 and b.ndim == 2:  # the common case, without reshapes or sums
                    if self.requires_grad:
                        self._accumulate(g @ b.T)
                    if other.requires_grad:
                        other._accumulate(a.T @ g)
                    return
                # Treat vectors as matrices (numpy's rule), so one formula serves every case.
                a2 = a[None, :] if a.ndim == 1 else a
                b2 = b[:, None] if b.ndim == 1 else b
                g2 = g.reshape(a2.shape[:-1] + b2.shape[-1:]) if (a.ndim == 1 or b.ndim == 1) else g
                if self.requires_grad:
                    ga = g2 @ np.swapaxes(b2, -1, -2)
                    self._accumulate(unbroadcast(ga, a2.shape).reshape(a.shape))
                if other.requires_grad:
                    gb = np.swapaxes(a2, -1, -2) @ g2
                    other._accumulate(unbroadcast(gb, b2.shape).reshape(b.shape))

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

            def backward(g: np.ndarray) -> None:
                self._accumulate(spread(g, kept.shape, self.data.shape))

            out._backward = backward
        return out

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        kept = self.data.sum(axis=axis, keepdims=True)
        scale = kept.size / self.data.size  # 1 / (number of elements averaged)
        out = Tensor._result(drop_axes(kept * scale, axis, keepdims), "mean", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                self._accumulate(spread(g * scale, kept.shape, self.data.shape))

            out._backward = backward
        return out

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        kept = self.data.max(axis=axis, keepdims=True)
        out = Tensor._result(drop_axes(kept, axis, keepdims), "max", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                # Ties share the gradient equally (as jax does).
                winners = (self.data == kept).astype(self.data.dtype)
                winners /= winners.sum(axis=axis, keepdims=True)
                self._accumulate(winners * g.reshape(kept.shape))

            out._backward = backward
        return out

    # ----- shape ----------------------------------------------------------------------------

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        out = Tensor._result(self.data.reshape(new_shape), "reshape", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                self._accumulate(g.reshape(self.data.shape))

            out._backward = backward
        return out

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        order = axes[0] if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        order = tuple(order) if order else tuple(reversed(range(self.data.ndim)))
        out = Tensor._result(self.data.transpose(order), "transpose", self)
        if out.requires_grad:
            inverse = tuple(np.argsort(order))

            def backward(g: np.ndarray) -> None:
                self._accumulate(g.transpose(inverse))

            out._backward = backward
        return out

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        out = Tensor._result(self.data[index], "index", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                full = np.zeros_like(self.data)
                np.add.at(full, index, g)  # repeated indices add up
                self._accumulate(full)

            out._backward = backward
        return out

    # ----- elementwise functions ------------------------------------------------------------

    def _unary(self, op: str, value: np.ndarray, local: Callable[[], np.ndarray]) -> Tensor:
        """An elementwise op whose derivative `local()` is evaluated only in the backward pass."""
        out = Tensor._result(value, op, self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                self._accumulate(g * local())

            out._backward = backward
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
        out = Tensor._result(np.maximum(self.data, 0), "relu", self)
        if out.requires_grad:

            def backward(g: np.ndarray) -> None:
                self._accumulate(g * (self.data > 0))

            out._backward = backward
        return out

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

            def backward(g: np.ndarray) -> None:
                # dL/dx = g - softmax(x) * sum(g)
                self._accumulate(g - np.exp(out_data) * g.sum(axis=axis, keepdims=True))

            out._backward = backward
        return out


# ----- helpers shared by the ops ----------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`grad` summed over the axes that broadcasting added or stretched: an array of `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    stretched = tuple(i + extra for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=tuple(range(extra)) + stretched, keepdims=True).reshape(shape)


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
    return sorted(found.values(), key=_creation_number)


def _creation_number(tensor: Tensor) -> int:
    return tensor._seq


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
