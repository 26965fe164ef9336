"""Typed formulas such as `tanh(w*x + b)` turned into graphs of our engine, safely.

The text is parsed with `ast` and walked with a whitelist (numbers, names, + - * / **, unary
minus, calls of a few named functions); everything else is rejected with a `FormulaError` that
points at the offending part. Nothing is ever passed to `eval`, `exec` or `compile`: the formula
is rebuilt as a small tree of `Term`s, which is then evaluated on our `Tensor` or on jax.numpy.
Length (hence size), nesting and exponents are bounded, so no input can hang or exhaust the
server or reach Python's recursion limit.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.autodiff.tensor import Tensor, stable_sigmoid

# The length bounds the work: every part (number, name, operator, call) takes at least one
# character, so a formula has at most MAX_LENGTH parts, whatever their shape.
MAX_LENGTH = 200  # characters
MAX_DEPTH = 40  # nesting: a chain a*b*c*... of binary operators counts as one level
MAX_EXPONENT = 64  # |p| for a constant exponent in a ** p
MAX_VARIABLES = 6
MAX_NAME_LENGTH = 12

FUNCTIONS = ("sin", "cos", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs")
CONSTANTS = {"pi": math.pi, "e": math.e}
OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}

# Friendly names of the constructs people are most likely to try, for the error message.
CONSTRUCT_NAMES = {
    ast.Attribute: "attribute access (a dot)",
    ast.Subscript: "indexing with [ ]",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "and / or",
    ast.IfExp: "if ... else",
    ast.Tuple: "tuples (a comma)",
    ast.List: "lists",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.JoinedStr: "strings",
    ast.Starred: "* unpacking",
    ast.NamedExpr: ":=",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


class FormulaError(ValueError):
    """A formula that cannot be drawn. `column` (1-based) and `snippet` point at the culprit."""

    def __init__(self, message: str, column: int | None = None, snippet: str = "") -> None:
        where = f" (column {column}: `{snippet}`)" if column is not None and snippet else ""
        super().__init__(message + where)
        self.reason = message  # what is wrong, without the place
        self.column = column
        self.snippet = snippet


class DomainError(FormulaError):
    """A formula evaluated outside its domain (log of a negative, division by zero, overflow)."""


@dataclass(frozen=True)
class Term:
    """One node of a parsed formula.

    kind: "number" (value), "variable" (name), "unary" (op "neg"), "binary" (op + - * / **),
    "call" (op is the function name). `text` is the source it came from, `column` 1-based.
    """

    kind: str
    op: str
    children: tuple[Term, ...]
    value: float
    text: str
    column: int


@dataclass(frozen=True)
class Formula:
    """A parsed, validated formula and its variables (sorted names)."""

    text: str
    root: Term
    variables: tuple[str, ...]


# ----- parsing ------------------------------------------------------------------------------


def parse_formula(text: str) -> Formula:
    """Parse and validate `text`; raise FormulaError saying what is wrong and where."""
    text = text.strip()
    if not text:
        raise FormulaError("the formula is empty; try tanh(w*x + b)")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; at most {MAX_LENGTH}")
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": the error says enough
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        column = error.offset if error.offset and error.offset <= len(text) else None
        where = "" if column else " at the end"
        raise FormulaError(f"this is not a formula I can read ({error.msg}{where})", column,
                           text[column - 1 : column + 9] if column else "") from None
    except (ValueError, MemoryError, RecursionError) as error:  # e.g. null bytes, deep nesting
        raise FormulaError(f"this is not a formula I can read ({error})") from None
    builder = _TermBuilder(text)
    root = builder.build(tree.body, depth=1)
    return Formula(text, root, tuple(sorted(builder.variables)))


class _TermBuilder:
    """Walks the `ast` of one formula, allowing only whitelisted nodes, and builds `Term`s."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.variables: set[str] = set()

    def fail(self, message: str, node: ast.AST) -> FormulaError:
        return FormulaError(message, self.column(node), self.snippet(node))

    def column(self, node: ast.AST) -> int:
        # ast offsets count UTF-8 bytes; the user counts characters.
        prefix = self.text.encode()[: node.col_offset]
        return len(prefix.decode(errors="ignore")) + 1

    def snippet(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.text, node) or ""
        return segment if len(segment) <= 40 else segment[:37] + "..."

    def term(self, node: ast.AST, kind: str, op: str, children: tuple[Term, ...] = (),
             value: float = 0.0) -> Term:
        return Term(kind, op, children, value, ast.get_source_segment(self.text, node) or op,
                    self.column(node))

    def build(self, node: ast.AST, depth: int) -> Term:
        if depth > MAX_DEPTH:
            raise self.fail(f"the formula is nested more than {MAX_DEPTH} levels deep", node)
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        construct = CONSTRUCT_NAMES.get(type(node), type(node).__name__)
        raise self.fail(f"{construct} can't be used in a formula", node)

    def number(self, node: ast.Constant) -> Term:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            what = "strings" if isinstance(value, str | bytes) else f"{type(value).__name__} values"
            raise self.fail(f"{what} are not allowed; only real numbers", node)
        number = float(value)  # an int literal is at most MAX_LENGTH digits: always converts
        if not math.isfinite(number):
            raise self.fail("this number is too large", node)
        return self.term(node, "number", "number", value=number)

    def name(self, node: ast.Name) -> Term:
        name = node.id
        if name in CONSTANTS:
            return self.term(node, "number", name, value=CONSTANTS[name])
        if name in FUNCTIONS:
            raise self.fail(f"{name} is a function: call it, like {name}(x)", node)
        if name.startswith("_") or not name.isascii() or not name.isidentifier():
            raise self.fail("variable names are letters and digits, like x, w1 or bias", node)
        if len(name) > MAX_NAME_LENGTH:
            raise self.fail(f"variable names are at most {MAX_NAME_LENGTH} characters", node)
        self.variables.add(name)
        if len(self.variables) > MAX_VARIABLES:
            raise self.fail(f"at most {MAX_VARIABLES} different variables", node)
        return self.term(node, "variable", name)

    def unary(self, node: ast.UnaryOp, depth: int) -> Term:
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand, depth + 1)
        if not isinstance(node.op, ast.USub):
            raise self.fail("only + - * / ** and function calls are allowed", node)
        return self.term(node, "unary", "neg", (self.build(node.operand, depth + 1),))

    def binary(self, node: ast.BinOp, depth: int) -> Term:
        op = OPERATORS.get(type(node.op))
        if op is None:
            raise self.fail("only + - * / ** and function calls are allowed", node)
        # The left operand of a left-associative chain (a*b*c = (a*b)*c) is not a deeper level.
        left = self.build(node.left, depth if isinstance(node.left, ast.BinOp) else depth + 1)
        right = self.build(node.right, depth + 1)
        if op == "**":
            self.check_exponent(node, right)
        return self.term(node, "binary", op, (left, right))

    def check_exponent(self, node: ast.BinOp, exponent: Term) -> None:
        """Refuse towers like a**b**c and constant exponents beyond +-MAX_EXPONENT."""
        if any(t.op == "**" for t in walk(exponent)):
            raise self.fail("a power inside an exponent (a**b**c) is not allowed; "
                            "use exp() for fast growth", node)
        if not any(t.kind == "variable" for t in walk(exponent)):
            with np.errstate(all="ignore"):
                p = float(evaluate(exponent, {}, NUMPY_FUNCTIONS))
            if not abs(p) <= MAX_EXPONENT:  # also catches nan
                raise self.fail(f"exponents are limited to ±{MAX_EXPONENT}", node)

    def call(self, node: ast.Call, depth: int) -> Term:
        if not isinstance(node.func, ast.Name):
            self.build(node.func, depth + 1)  # a disallowed callee (a.b, lambda) is named first
            raise self.fail("only the functions " + ", ".join(FUNCTIONS) + " can be called", node)
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(f"unknown function {name}; the functions are "
                            + ", ".join(FUNCTIONS), node)
        if node.keywords:
            raise self.fail(f"{name}() takes no keyword arguments", node)
        if len(node.args) != 1:
            raise self.fail(f"{name}() takes exactly one argument", node)
        return self.term(node, "call", name, (self.build(node.args[0], depth + 1),))


def walk(term: Term) -> list[Term]:
    """`term` and every term below it."""
    found, stack = [], [term]
    while stack:
        t = stack.pop()
        found.append(t)
        stack.extend(t.children)
    return found


# ----- evaluation ---------------------------------------------------------------------------


def evaluate(term: Term, leaves: Mapping[str, object], functions: Mapping[str, Callable]) -> object:
    """The value of `term` with variables from `leaves`, using `functions` for every op.

    `functions` maps "+", "-", "*", "/", "**", "neg", "number" and the FUNCTIONS' names to
    callables; this one walk serves our Tensor, numpy and jax.numpy alike.
    """
    if term.kind == "number":
        return functions["number"](term.value)
    if term.kind == "variable":
        return leaves[term.op]
    args = [evaluate(child, leaves, functions) for child in term.children]
    return functions[term.op](*args)


def _arithmetic(number: Callable[[float], object]) -> dict[str, Callable]:
    return {
        "number": number,
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "**": lambda a, b: a**b,
        "neg": lambda a: -a,
    }


NUMPY_FUNCTIONS: dict[str, Callable] = _arithmetic(np.float64) | {
    "sin": np.sin, "cos": np.cos, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "sigmoid": stable_sigmoid, "relu": lambda a: np.maximum(a, 0), "abs": np.abs,
}


@dataclass(frozen=True)
class Evaluation:
    """A formula evaluated on our engine at one point, gradients filled in.

    `output` is the root Tensor (its graph can be exported), `inputs` the variables' Tensors.
    """

    output: Tensor
    inputs: dict[str, Tensor]

    @property
    def value(self) -> float:
        return self.output.item()

    @property
    def gradients(self) -> dict[str, float]:
        return {name: float(t.grad) for name, t in self.inputs.items()}


def evaluate_with_gradients(formula: Formula, values: Mapping[str, float]) -> Evaluation:
    """Build the formula's graph on our engine at `values` (float64 scalars) and run backward.

    Every node's value and every gradient is checked: a value or gradient that is not a finite
    number raises DomainError naming the part of the formula responsible.
    """
    inputs = {
        name: Tensor(np.float64(values[name]), requires_grad=True, label=name)
        for name in formula.variables
    }
    with np.errstate(all="ignore"):
        output = _build_checked(formula.root, inputs)
        if output.requires_grad:
            output.backward()
    for name, tensor in inputs.items():
        if not np.isfinite(tensor.grad):
            raise DomainError(f"the gradient with respect to {name} is not a finite number "
                              f"here ({float(tensor.grad)}); try other values")
    return Evaluation(output, inputs)


def _build_checked(term: Term, inputs: Mapping[str, Tensor]) -> Tensor:
    """The Tensor of `term`, each node labelled with its text and checked for a finite value."""
    if term.kind == "variable":
        return inputs[term.op]
    if term.kind == "number":
        out = Tensor(np.float64(term.value))
    else:
        args = [_build_checked(child, inputs) for child in term.children]
        out = TENSOR_OPS[term.op](*args)
        if not np.all(np.isfinite(out.data)):
            raise domain_error(term, args, out)
    out.label = term.text
    return out


TENSOR_OPS: dict[str, Callable] = _arithmetic(lambda v: Tensor(np.float64(v))) | {
    name: (lambda a, _name=name: getattr(a, _name)()) for name in FUNCTIONS
}


def domain_error(term: Term, args: list[Tensor], out: Tensor) -> DomainError:
    """The most specific explanation of why `term` gave a non-finite value."""
    values = [float(a.data) for a in args]
    if term.op == "log" and values[0] <= 0:
        reason = f"log needs a positive number, but its argument is {values[0]:.4g}"
    elif term.op == "sqrt" and values[0] < 0:
        reason = f"sqrt needs a number >= 0, but its argument is {values[0]:.4g}"
    elif term.op == "/" and values[1] == 0:
        reason = "division by zero"
    elif term.op == "**" and values[0] < 0:
        reason = f"a negative number ({values[0]:.4g}) to a fractional power"
    elif term.op == "**" and values[0] == 0:
        reason = "zero to a negative power"
    else:
        reason = "the result is too large for a float (overflow)"
    return DomainError(f"{reason}: {term.text} = {float(out.data)}", term.column, term.text)


def evaluate_numpy(formula: Formula, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The formula on arrays (e.g. a grid for a contour plot); nan/inf where undefined."""
    with np.errstate(all="ignore"):
        return np.asarray(evaluate(formula.root, values, NUMPY_FUNCTIONS), dtype=np.float64)


def jax_function(formula: Formula) -> Callable:
    """The same formula on jax.numpy: f(*values in `formula.variables` order) -> scalar."""
    import jax
    import jax.numpy as jnp

    functions = _arithmetic(jnp.asarray) | {
        "sin": jnp.sin, "cos": jnp.cos, "exp": jnp.exp, "log": jnp.log, "sqrt": jnp.sqrt,
        "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "abs": jnp.abs,
    }

    def f(*args: object) -> object:
        return evaluate(formula.root, dict(zip(formula.variables, args, strict=True)), functions)

    return f
