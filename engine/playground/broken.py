"""The break-it lab: classic backprop bugs on a copy of our backward pass, caught by jax.grad.

Nothing here changes `engine.autodiff`: the forward pass is the normal one (`engine.ffnn.loss` on
`engine.nn.layers.autodiff_ops()`), and each bug lives in `broken_gradients`, a copy of
`Tensor.backward`'s walk that swaps one op's local rule (or the walk's own bookkeeping) for a
buggy one. The lab's small network (784-32-32-10, ReLU, softmax cross-entropy plus a little
weight decay, so every weight is used twice) is trained briefly on real digits with the bug, and
the twin-engine check compares our gradients with `jax.grad`'s at every parameter and at every
signal between the layers (the gradient arriving before and after each ReLU, and at the logits),
so a wrong gradient is seen where it first appears.

    lab = run_lab("relu_mask", x_train, y_train)
    [c.name for c in lab.check if not c.ok]   # where the gradients leave jax.grad's
    lab.losses, lab.healthy_losses           # the consequence
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from engine.autodiff import Tensor
from engine.autodiff.tensor import Grads, topological_order
from engine.data.mnist import as_float
from engine.ffnn import Architecture, Params, init_params, loss
from engine.ffnn.model import TWIN_TOLERANCE
from engine.nn.layers import JAX_OPS, Array, Ops, autodiff_ops
from engine.nn.optim import make_optimizer
from engine.training.loop import numpy_stepper


@dataclass(frozen=True)
class Bug:
    """One classic backprop bug: its name in the list, what the code does, why it is wrong."""

    title: str
    code: str
    explanation: str


NO_BUG = "none"
BUGS: dict[str, Bug] = {
    NO_BUG: Bug(
        "No bug: the engine as it is",
        "node.grad = node.grad + grad   # every rule as derived",
        "Every gradient matches jax.grad's to float32 rounding, and the loss falls."),
    "assign": Bug(
        "Gradient assigned instead of accumulated on a node used twice",
        "tensor.grad = grad            # should be: tensor.grad = tensor.grad + grad",
        "Each weight is used twice: in its layer and in the weight-decay penalty. Its gradient "
        "must be the sum of what both uses send back; assigning keeps only the last one to "
        "arrive, the penalty's, so every weight matrix is wrong while every bias and every "
        "signal between the layers is right. The weights only shrink: the loss barely moves."),
    "not_reset": Bug(
        "Gradients not reset between steps",
        "# forgot: param.grad = 0 before backward()",
        "Each step's gradient is added to all the earlier steps' ones, so the parameters "
        "follow the sum of every gradient so far. The signals inside the network are fresh "
        "nodes each step and stay right; only the parameters, which live on between steps, are "
        "wrong. The first step is still right; the steps grow and the loss goes wild."),
    "softmax_sign": Bug(
        "Sign flipped in the softmax cross-entropy gradient",
        "dlogits = onehot - softmax     # should be: softmax - onehot",
        "The gradient at the logits points the wrong way, and everything below inherits the "
        "flip: every layer is wrong, from the logits down. Training then climbs the loss "
        "instead of descending it."),
    "relu_mask": Bug(
        "ReLU's mask dropped",
        "dz = da                        # should be: dz = da * (z > 0)",
        "A ReLU passes gradient only where its input was positive. Without the mask, the "
        "gradient after each ReLU is right but the one before it is wrong, and so is every "
        "layer below; the last layer, above every ReLU, stays right."),
    "bias_mean": Bug(
        "Bias gradient not summed over the batch",
        "db = dout.mean(axis=0)         # should be: db = dout.sum(axis=0)",
        "A bias is added to every example of the batch, so its gradient is the sum over the "
        "batch. The loss is already a mean over the batch; averaging again divides every bias "
        "gradient by the batch size once more. Only the biases are wrong, and they learn 32 "
        "times slower: the loss hardly shows it, the twin check does."),
    "transposed": Bug(
        "Transposed weight gradient",
        "dW = (dout.T @ x).reshape(W.shape)   # should be: dW = x.T @ dout",
        "dout.T @ x is the weight gradient transposed, and a reshape (instead of .T) makes it "
        "fit the weight's shape silently, scrambling it. Only the weight matrices are wrong; "
        "the gradient sent on to the layer below (dout @ W.T) is right, so every signal and "
        "every bias is right."),
}

ARCH = Architecture(hidden=(32, 32), activation="relu", init="he")
WEIGHT_DECAY = 1e-3
LEARNING_RATE = 0.1
BATCH_SIZE = 32
STEPS = 60


# ----------------------------------------------------------------------------- the lab's model

def signal_names(arch: Architecture) -> list[str]:
    """The signals whose gradients the check compares, in forward order: before and after each
    hidden layer's nonlinearity, then the logits."""
    names = []
    for i in range(1, len(arch.hidden) + 1):
        names += [f"layer {i}, before {arch.activation}", f"layer {i}, after {arch.activation}"]
    return names + ["logits"]


def signal_shapes(arch: Architecture, batch: int) -> list[tuple[int, int]]:
    """Each signal's shape (batch, width), aligned with `signal_names`."""
    return [(batch, h) for h in arch.hidden for _ in range(2)] + [(batch, arch.layer_sizes[-1])]


def tapped(ops: Ops, tap: Callable[[Array], Array]) -> Ops:
    """`ops` whose ReLU passes its input and output, and whose log-softmax its input, through
    `tap` (in forward order, as `signal_names`): a recorder on our engine, a zero to
    differentiate by on JAX."""
    return replace(ops, relu=lambda z: tap(ops.relu(tap(z))),
                   log_softmax=lambda z: ops.log_softmax(tap(z)))


def lab_loss(params: dict[str, Array], x: Array, y: Array, *, arch: Architecture, ops: Ops
             ) -> Array:
    """Weight decay, then the cross-entropy of the batch: x (batch, 28, 28), y (batch,) -> scalar.

    The penalty is built first, so a walk in reverse creation order reaches it last.
    """
    penalty = sum((params[f"w{i}"] ** 2).sum() for i in range(arch.n_layers))
    return WEIGHT_DECAY * penalty + loss(params, x, y, arch=arch, loss_name="cross_entropy",
                                         ops=ops)


# ----------------------------------------------------------------------------- the broken walk

def local_gradients(bug: str, node: Tensor, grad: np.ndarray) -> Grads:
    """What `node` sends to its inputs under `bug` (its own gradient: grad, shape of its data)."""
    sent = node.input_gradients(grad)
    if bug == "relu_mask" and node.op == "relu":
        return (grad,)
    if bug == "softmax_sign" and node.op == "log_softmax":
        return tuple(-g for g in sent)
    if bug == "bias_mean" and node.op == "+":  # a broadcast input got the sum: make it a mean
        return tuple(None if g is None else g * (g.size / grad.size) for g in sent)
    if bug == "transposed" and node.op == "@" and sent[1] is not None:
        return sent[0], sent[1].T.reshape(sent[1].shape)
    return sent


def broken_gradients(root: Tensor, bug: str) -> dict[int, np.ndarray]:
    """d(root)/d(node) for every node root depends on, keyed by id(node), by a copy of
    `Tensor.backward` with `bug` in it (nodes are visited in reverse creation order)."""
    grads = {id(root): np.ones_like(root.data)}
    for node in reversed(topological_order(root)):
        if id(node) not in grads or not node.inputs:
            continue
        for tensor, grad in zip(node.inputs, local_gradients(bug, node, grads[id(node)]),
                                strict=True):
            if grad is None:
                continue
            if bug == "assign" or id(tensor) not in grads:
                grads[id(tensor)] = grad
            else:
                grads[id(tensor)] = grads[id(tensor)] + grad
    return grads


Gradients = Callable[[Params, np.ndarray, np.ndarray], tuple[float, dict[str, np.ndarray]]]


def our_gradients(bug: str, arch: Architecture = ARCH) -> Gradients:
    """`(params, x, y) -> (loss, gradients)` of our engine with `bug` (NO_BUG: the real
    `Tensor.backward`): gradients by parameter name and by signal name (`signal_names`).

    x: (batch, 28, 28) float, y: (batch,) int. "not_reset" keeps the parameters' gradients of
    every earlier call of this function and adds each new one to them.
    """
    carried: dict[str, np.ndarray] = {}
    signals = signal_names(arch)

    def gradients(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
        tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
        recorded: list[Tensor] = []
        ops = tapped(autodiff_ops(), lambda t: recorded.append(t) or t)
        value = lab_loss(tensors, x, y, arch=arch, ops=ops)
        if bug == NO_BUG:
            value.backward()
            grads = {id(t): t.grad for t in [*tensors.values(), *recorded]}
        else:
            grads = broken_gradients(value, bug)
        out = {name: grads.get(id(t), np.zeros_like(t.data)) for name, t in tensors.items()}
        if bug == "not_reset":
            carried.update({name: carried.get(name, 0) + g for name, g in out.items()})
            out = dict(carried)
        out.update({name: grads[id(t)] for name, t in zip(signals, recorded, strict=True)})
        return value.item(), out

    return gradients


def parameter_gradients(gradients: Gradients) -> Callable[[Params, np.ndarray, np.ndarray],
                                                         tuple[float, Params]]:
    """`gradients` (see `our_gradients`) keeping only the parameters' ones, for a stepper."""
    def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        value, grads = gradients(params, x, y)
        return value, {name: grads[name] for name in params}

    return loss_and_grads


# ----------------------------------------------------------------------------- the reference

@partial(jax.jit, static_argnames="arch")
def reference_gradients(params: Params, x: Array, y: Array, *, arch: Architecture = ARCH
                        ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(loss, gradients) of `lab_loss` by jax.grad, named as `our_gradients` names them: a zero
    is added at each signal, and the gradient with respect to that zero is the signal's."""
    zeros = [jnp.zeros(shape, jnp.float32) for shape in signal_shapes(arch, x.shape[0])]

    def total(params: Params, taps: list[jax.Array]) -> jax.Array:
        remaining: Iterator[jax.Array] = iter(taps)
        ops = tapped(JAX_OPS, lambda z: z + next(remaining))
        return lab_loss(params, x, y, arch=arch, ops=ops)

    value, (by_param, by_tap) = jax.value_and_grad(total, argnums=(0, 1))(params, zeros)
    return value, {**by_param, **dict(zip(signal_names(arch), by_tap, strict=True))}


# ----------------------------------------------------------------------------- the check

@dataclass(frozen=True)
class PointCheck:
    """One place of the network: how far our gradient is from jax.grad's there.

    kind: "parameter" or "signal". max_rel: max |ours - jax| / max |jax|.
    """

    name: str
    kind: str
    max_abs: float
    max_rel: float

    @property
    def ok(self) -> bool:
        return self.max_rel <= TWIN_TOLERANCE


def check_order(arch: Architecture) -> list[tuple[str, str]]:
    """(name, kind) of every checked place, in the order backprop reaches them: from the logits
    down, each layer's weights and bias after the signal above them."""
    signals = signal_names(arch)
    order = [(signals[-1], "signal")]
    for i in reversed(range(arch.n_layers)):
        order += [(f"w{i}", "parameter"), (f"b{i}", "parameter")]
        if i > 0:
            order += [(signals[2 * i - 1], "signal"), (signals[2 * i - 2], "signal")]
    return order


def twin_check(ours: dict[str, np.ndarray], theirs: dict[str, Array], arch: Architecture = ARCH
               ) -> list[PointCheck]:
    """Compare two sets of gradients (as `our_gradients` names them) at every place, in
    `check_order`."""
    checks = []
    for name, kind in check_order(arch):
        reference = np.asarray(theirs[name], np.float64)
        difference = float(np.abs(np.asarray(ours[name], np.float64) - reference).max())
        scale = float(np.abs(reference).max())
        checks.append(PointCheck(name, kind, difference, difference / scale if scale else 0.0))
    return checks


# ----------------------------------------------------------------------------- the lab

@dataclass(frozen=True)
class LabResult:
    """A brief training run with a bug, and the twin check at its end.

    losses, healthy_losses: (steps,) with the bug and with the real engine, same start and
    batches (the broken run stops early if its loss stops being finite). check: the twin check
    of the broken engine, as it is after the run, on the first batch at the starting
    parameters (where both engines see the same finite numbers, whatever the bug did).
    """

    bug: str
    losses: np.ndarray
    healthy_losses: np.ndarray
    check: list[PointCheck]


def lab_batches(n_train: int, steps: int = STEPS, batch_size: int = BATCH_SIZE, seed: int = 0
                ) -> np.ndarray:
    """Indices (steps, batch_size) into the training digits, shuffled, each digit at most once
    per pass."""
    rng = np.random.default_rng(seed)
    passes = -(-steps * batch_size // n_train)
    order = np.concatenate([rng.permutation(n_train) for _ in range(passes)])
    return order[: steps * batch_size].reshape(steps, batch_size)


def train_briefly(gradients: Gradients, params: Params, x_train: np.ndarray, y_train: np.ndarray,
                  batches: np.ndarray) -> tuple[Params, np.ndarray]:
    """(final params, losses (steps,)) of plain SGD steps by `gradients` (see `our_gradients`)."""
    stepper = numpy_stepper(parameter_gradients(gradients), make_optimizer("sgd", LEARNING_RATE),
                            x_train, y_train)
    params, _, losses = stepper.run(params, stepper.init(params), batches)
    return params, losses


def run_lab(bug: str, x_train: np.ndarray, y_train: np.ndarray, *, steps: int = STEPS,
            seed: int = 0) -> LabResult:
    """Train the lab's network for `steps` steps with `bug` and with the real engine, then run the
    twin check of the broken engine. x_train: uint8 (n, 28, 28), y_train: int (n,).

    Raises ValueError for a bug not in BUGS.
    """
    if bug not in BUGS:
        raise ValueError(f"unknown bug {bug!r}; choose one of {list(BUGS)}")
    start = init_params(jax.random.key(seed), ARCH)
    batches = lab_batches(len(x_train), steps, seed=seed)
    broken = our_gradients(bug)
    _, losses = train_briefly(broken, start, x_train, y_train, batches)
    _, healthy = train_briefly(our_gradients(NO_BUG), start, x_train, y_train, batches)
    x, y = as_float(x_train[batches[0]]), np.asarray(y_train[batches[0]])
    _, ours = broken(start, x, y)
    _, theirs = reference_gradients(start, x, np.asarray(y, np.int32))
    return LabResult(bug, losses, healthy, twin_check(ours, theirs))
