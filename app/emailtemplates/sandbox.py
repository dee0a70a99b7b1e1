"""The sandbox a merchant's template renders in, and the bounds on what one render may do.

Each operator, filter or method call is bounded in what it may build (`MAX_REPEAT`), and one
render of one part in what it does in all: the items it takes from `range`, `products` and
`star_urls` (`MAX_STEPS`), what its operators, filters and calls build (`MAX_BUILT`), what it
writes (a cap given per part) and how long it runs (a deadline on `time.monotonic`: elapsed time,
not the wall clock, so the module stays free of `now`). Past a bound, a `SecurityError` says which.
"""

import inspect
import operator
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import suppress
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

# What one operator, filter or call may build: `'x' * 10**9` is refused, not allocated.
MAX_REPEAT = 100_000
MAX_EXPONENT = 100
MAX_INT_BITS = 100_000
# What one render of one part may do in all.
MAX_STEPS = 100_000
MAX_BUILT = 2_000_000
SECONDS = 1.0

# A width or precision of six digits or more, or given by an argument (`*`), in a `%` format
# or in a `str.format` field: `'%999999999s' % ''` would build a gigabyte.
_WIDE_PERCENT = re.compile(r"%(\([^)]*\))?[^a-zA-Z%(]*(\*|\d{6,})")
_WIDE_FIELD = re.compile(r"\{[^{}]*\d{6,}[^{}]*\}")
_SIZED = (str, bytes, list, tuple)


class Budget:
    """What is left to one render of one part."""

    __slots__ = ("built", "deadline", "steps")

    def __init__(self, deadline: float) -> None:
        self.steps = 0
        self.built = 0
        self.deadline = deadline

    def step(self) -> None:
        """One item taken from `range`, `products` or `star_urls`."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SecurityError(
                f"the template's loops take over {MAX_STEPS:,} steps in all"
                " (items of range, products and star_urls)"
            )
        self.in_time()

    def build(self, size: int) -> None:
        """A string or list of `size` items built by an operator, a filter or a call."""
        self.built += size
        if self.built > MAX_BUILT:
            raise SecurityError(f"the template builds over {MAX_BUILT:,} characters in all")
        self.in_time()

    def in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"rendering the template takes over {SECONDS:g} s")

    def range(self, *args: int) -> "Steps":
        """The templates' `range`: at most 100,000 items, each one counted."""
        return Steps(safe_range(*args), self)


_CURRENT: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


class Counted(list[Any]):
    """A list (`products`, `star_urls`) whose iteration counts against a render's budget; its
    items, indexing and length are the list's own, and a slice of it counts as it does."""

    def __init__(self, items: Iterable[Any], budget: Budget) -> None:
        super().__init__(items)
        self._budget = budget

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self._budget.step()
            yield item

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        return Counted(found, self._budget) if isinstance(index, slice) else found


class Steps:
    """A `range` whose iteration counts against a render's budget."""

    __slots__ = ("_budget", "_range")

    def __init__(self, numbers: range, budget: Budget) -> None:
        self._range = numbers
        self._budget = budget

    def __iter__(self) -> Iterator[int]:
        for number in self._range:
            self._budget.step()
            yield number

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: int | slice) -> "int | Steps":
        if isinstance(index, slice):
            return Steps(self._range[index], self._budget)
        return self._range[index]

    def __contains__(self, value: object) -> bool:
        return value in self._range

    def __repr__(self) -> str:
        return repr(self._range)


# Jinja names a value's type in what it says ("list object has no element 0"): as before.
Counted.__module__, Counted.__name__ = "builtins", "list"
Steps.__module__, Steps.__name__ = "builtins", "range"


def _charge(result: Any) -> None:
    budget = _CURRENT.get()
    if budget is not None and isinstance(result, _SIZED):
        budget.build(len(result))


def _check_arguments(args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and abs(value) > MAX_REPEAT:
            raise SecurityError(f"a number given to a call or filter is limited to {MAX_REPEAT:,}")


def _size(op: str, left: Any, right: Any) -> int:
    """The length of what `left op right` builds, when it builds a string or a list."""
    if op == "+":
        if isinstance(left, _SIZED) and isinstance(right, _SIZED):
            return len(left) + len(right)
        return 0
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, _SIZED) and isinstance(times, int):
            return len(sequence) * times
    return 0


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every operator, filter and call that can build a large
    string bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if not isinstance(right, int | float) or abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponents are limited to {MAX_EXPONENT}")
            if isinstance(left, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
                raise SecurityError(f"a number is limited to {MAX_INT_BITS:,} bits")
            return operator.pow(left, right)
        if op == "%":
            if isinstance(left, str) and _WIDE_PERCENT.search(left):
                raise SecurityError(f"a width in a format is limited to {MAX_REPEAT - 1:,}")
            result = operator.mod(left, right)
            _charge(result)
            return result
        if _size(op, left, right) > MAX_REPEAT:
            raise SecurityError(f"a repeated or joined text or list is limited to {MAX_REPEAT:,}")
        ints = op == "*" and isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError(f"a number is limited to {MAX_INT_BITS:,} bits")
        result = operator.mul(left, right) if op == "*" else operator.add(left, right)
        _charge(result)
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        if isinstance(getattr(obj, "__self__", None), str):
            if obj.__name__ in _STR_METHODS_REFUSED:
                raise SecurityError(f"'{obj.__name__}' is not available on a string")
            if obj.__name__ == "replace":
                named = dict(zip(("old", "new", "count"), args, strict=False)) | kwargs
                _grown("replace", {"s": obj.__self__, **named})
        result = super().call(context, obj, *args, **kwargs)
        _charge(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and value.__name__ == "format_map":
            # Its mapping could hold a width (`'{x:{w}}'`) that no argument check sees.
            raise SecurityError("'format_map' is not available on a string")
        if wrapped is not None and _WIDE_FIELD.search(value.__self__):
            raise SecurityError(f"a width in a format is limited to {MAX_REPEAT - 1:,}")
        return wrapped


# Filters whose result can be far larger than their value and arguments, and its size.
_GROWTH: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "join": lambda a: len(a.get("d", "")) * len(a["value"]),
    "replace": lambda a: _replaced(str(a["s"]), a["old"], a["new"], a.get("count")),
    "indent": lambda a: (str(a["s"]).count("\n") + 1) * _width(a.get("width", 4)),
    "wordwrap": lambda a: len(str(a["s"])) * len(a.get("wrapstring") or "\n"),
    "tojson": lambda a: 0 if (a.get("indent") or 0) <= 16 else MAX_REPEAT + 1,
    "sum": lambda a: 0 if isinstance(a.get("start", 0), int | float) else MAX_REPEAT + 1,
}
# Methods of a string a template may not call: each builds its value many times over (`join`,
# `expandtabs`, `translate`) or leaves `str` for types these bounds do not follow (`encode`).
_STR_METHODS_REFUSED = frozenset({"join", "expandtabs", "translate", "encode", "maketrans"})


def _width(width: Any) -> int:
    return len(width) if isinstance(width, str) else width if isinstance(width, int) else 0


def _replaced(s: str, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return 0
    times = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(s) + times * len(new)


def _grown(name: str, arguments: Mapping[str, Any]) -> None:
    if name in _GROWTH and _GROWTH[name](arguments) > MAX_REPEAT:
        raise SecurityError(f"'{name}' would build over {MAX_REPEAT:,} characters here")


def _bounded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # The filtered value itself may be anything; the filter's arguments are bounded, what it
    # would build is estimated first when it can grow (`_GROWTH`), and what it built is charged.
    skip = 2 if hasattr(function, "jinja_pass_arg") else 1
    signature = inspect.signature(function)

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name != "format":  # its arguments are values to format: widths are in the text
            _check_arguments(args[skip:], kwargs)
        value = args[skip - 1] if len(args) >= skip else None
        if name == "join" and value is not None and not hasattr(value, "__len__"):
            value = list(value)  # `products|map(...)|join`: counted as it is taken
            args = (*args[: skip - 1], value, *args[skip:])
        if name == "format" and isinstance(value, str) and _WIDE_PERCENT.search(value):
            raise SecurityError(f"a width in a format is limited to {MAX_REPEAT - 1:,}")
        if name in _GROWTH:
            # With arguments that do not fit, the filter itself says what is wrong.
            with suppress(TypeError):
                _grown(name, signature.bind(*args, **kwargs).arguments)
        result = function(*args, **kwargs)
        _charge(result)
        return result

    return bounded


def environment(autoescape: bool) -> Sandbox:
    """A sandbox without globals: each render passes its own counted `range`."""
    env = Sandbox(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True)
    env.globals = {}
    env.filters = {name: _bounded(name, f) for name, f in env.filters.items()}
    return env


def run(
    template: Template,
    variables: Mapping[str, Any],
    counted: Iterable[str],
    cap: int,
    deadline: float,
) -> str:
    """`template` rendered with `variables`, the lists named in `counted` and `range` counting
    every item taken, at most `cap` bytes of UTF-8 written, before `deadline` (monotonic)."""
    budget = Budget(deadline)
    context = dict(variables)
    for name in counted:
        context[name] = Counted(context[name], budget)
    context["range"] = budget.range
    token = _CURRENT.set(budget)
    chunks: Generator[str] = template.generate(context)  # type: ignore[assignment]
    try:
        written = 0
        out = []
        for chunk in chunks:
            written += len(chunk) if chunk.isascii() else len(chunk.encode())
            if written > cap:
                raise SecurityError(f"the rendered part is limited to {cap:,} bytes")
            if time.monotonic() > deadline:
                budget.in_time()
            out.append(chunk)
        return "".join(out)
    finally:
        chunks.close()
        _CURRENT.reset(token)
