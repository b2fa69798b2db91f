"""kubectl's JSONPath template language (`k8s.io/client-go/util/jsonpath`), over JSON values.

A template is text with actions in braces: `{.items[*].metadata.name}`, `{range .items[*]}...{end}`,
filters `[?(@.status.phase=="Running")]`, slices, unions, recursive descent `..name`, `{@}`.
Output follows kubectl: several results of one action are joined by a space, maps and lists
print as compact JSON (sorted keys), strings raw, numbers and booleans the way Go prints them,
null as `null`.

One deliberate difference: kubectl splits a bracketed key on its dots (so
`{.metadata.labels['app.kubernetes.io/name']}` finds nothing there); here a quoted key is one
field name. `{.metadata.labels.app\\.kubernetes\\.io/name}` works in both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class JSONPathError(Exception):
    """A template that does not parse or fails on the data.

    The message is kubectl's, trailing newline(s) included: print it as `error: <message>`.
    """


class _ParseError(Exception):
    pass


class _EvalError(Exception):
    """An evaluation failure; `partial` is what the failing step returned alongside the error."""

    def __init__(self, message: str, partial: list[Any]) -> None:
        super().__init__(message)
        self.partial = partial


# ---------------------------------------------------------------------------------------------
# Nodes


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Recursive:
    pass


@dataclass(frozen=True)
class _Slice:
    """`[start:end:step]`; None means "not given". `end_derived` marks `[i]` (end = i + 1)."""

    start: int | None
    end: int | None
    step: int | None
    end_derived: bool = False


@dataclass(frozen=True)
class _Int:
    value: int


@dataclass(frozen=True)
class _Float:
    value: float


@dataclass(frozen=True)
class _Bool:
    value: bool


@dataclass(frozen=True)
class _Identifier:
    name: str


@dataclass(frozen=True)
class _Action:
    """The nodes of one `{...}` (or of a filter operand / union branch), applied left to right."""

    nodes: tuple[_Node, ...]


@dataclass(frozen=True)
class _Union:
    branches: tuple[_Action, ...]


@dataclass(frozen=True)
class _Filter:
    left: _Action
    right: _Action
    operator: str  # "exists" for `[?(@.x)]`


_Node = (
    _Text
    | _Field
    | _Wildcard
    | _Recursive
    | _Slice
    | _Int
    | _Float
    | _Bool
    | _Identifier
    | _Action
    | _Union
    | _Filter
)


# ---------------------------------------------------------------------------------------------
# Parser (a port of client-go's hand-written scanner, so edge cases fail the same way)

_EOF = ""
_SLICE = re.compile(r"^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$")
_DICT_KEY = re.compile(r"^'([^']*)'$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$")


def _is_terminator(char: str) -> bool:
    return char in (_EOF, " ", "\t", "\r", "\n", ".", ",", "[", "]", "$", "@", "{", "}")


def _is_alphanumeric(char: str) -> bool:
    return char == "_" or (char != _EOF and (char.isalpha() or char.isdecimal()))


def _go_rune(char: str) -> str:
    """Go's `%#U`: "U+007E '~'" (the quoted glyph only when printable)."""
    code = f"U+{ord(char):04X}"
    return f"{code} '{char}'" if char.isprintable() else code


class _Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.width = 0

    # -- scanning primitives -----------------------------------------------------------------

    def next(self) -> str:
        if self.pos >= len(self.input):
            self.width = 0
            return _EOF
        char = self.input[self.pos]
        self.width = 1
        self.pos += 1
        return char

    def peek(self) -> str:
        char = self.next()
        self.backup()
        return char

    def backup(self) -> None:
        self.pos -= self.width

    def consume(self) -> str:
        value = self.input[self.start : self.pos]
        self.start = self.pos
        return value

    def rest(self) -> str:
        return self.input[self.pos :]

    # -- grammar -----------------------------------------------------------------------------

    def parse(self) -> list[_Text | _Action]:
        """Top level: literal text and `{...}` actions."""
        root: list[_Text | _Action] = []
        while True:
            brace = self.input.find("{", self.pos)
            if brace < 0:
                self.pos = len(self.input)
                if self.pos > self.start:
                    root.append(_Text(self.consume()))
                return root
            self.pos = brace
            if self.pos > self.start:
                root.append(_Text(self.consume()))
            self.pos += 1
            self.consume()
            root.append(_Action(tuple(self.parse_inside_action())))

    def parse_inside_action(self) -> list[_Node]:
        nodes: list[_Node] = []
        while True:
            rest = self.rest()
            if rest.startswith("}"):
                self.pos += 1
                self.consume()
                return nodes
            if rest.startswith("[?("):
                nodes.append(self.parse_filter())
                continue
            if rest.startswith(".."):
                if nodes and isinstance(nodes[-1], _Recursive):
                    raise _ParseError("invalid multiple recursive descent")
                self.pos += 2
                self.consume()
                nodes.append(_Recursive())
                if _is_alphanumeric(self.peek()):
                    nodes.append(self.parse_field())
                continue
            char = self.next()
            if char == _EOF or char in "\r\n":
                raise _ParseError("unclosed action")
            if char in (" ", "@", "$"):  # spaces and the current object: nothing to add
                self.consume()
            elif char == "[":
                nodes.extend(self.parse_array())
            elif char in ('"', "'"):
                nodes.append(self.parse_quote(char))
            elif char == ".":
                nodes.append(self.parse_field())
            elif char in "+-" or char.isdecimal():
                self.backup()
                nodes.append(self.parse_number())
            elif _is_alphanumeric(char):
                self.backup()
                nodes.append(self.parse_identifier())
            else:
                raise _ParseError(f"unrecognized character in action: {_go_rune(char)}")

    def parse_identifier(self) -> _Node:
        while not _is_terminator(self.next()):
            pass
        self.backup()
        value = self.consume()
        if value in ("true", "false"):
            return _Bool(value == "true")
        return _Identifier(value)

    def parse_number(self) -> _Node:
        if self.peek() in ("+", "-"):
            self.next()
        while True:
            char = self.next()
            if char != "." and not (char != _EOF and char.isdecimal()):
                self.backup()
                break
        value = self.consume()
        if re.fullmatch(r"[+-]?[0-9]+", value):
            return _Int(int(value))
        try:
            return _Float(float(value))
        except ValueError:
            raise _ParseError(f"cannot parse number {value}") from None

    def parse_array(self) -> list[_Node]:
        while True:
            char = self.next()
            if char in (_EOF, "\n"):
                raise _ParseError("unterminated array")
            if char == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            return [_Union(tuple(_parse_action(f"[{part.strip(' ')}]") for part in parts))]
        key = _DICT_KEY.match(text)
        if key:
            # A quoted key is one field name (kubectl would split it on its dots).
            return [_Wildcard() if key.group(1) == "*" else _Field(key.group(1))]
        match = _SLICE.match(text)
        if not match:
            raise _ParseError(f"invalid array index {text}")
        groups = [match.group(i) or "" for i in (1, 2, 3)]
        values: list[int | None] = [None, None, None]
        end_derived = False
        for i, raw in enumerate(groups):
            if raw:
                if i > 0:
                    raw = raw[1:]
                if i > 0 and raw == "":
                    continue
                try:
                    values[i] = int(raw)
                except ValueError:
                    raise _ParseError(f"array index {raw} is not a number") from None
            elif i == 1:
                values[1] = (values[0] or 0) + 1
                end_derived = True
        return [_Slice(values[0], values[1], values[2], end_derived)]

    def parse_filter(self) -> _Filter:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            char = self.next()
            if char in (_EOF, "\n"):
                raise _ParseError("unterminated filter")
            if char in ('"', "'"):
                if not begin:
                    begin, pair = True, char
                    continue
                if self.input[self.pos - 2] != "\\" and char == pair:
                    end = True
            elif char == ")" and begin == end:
                break
        if self.next() != "]":
            raise _ParseError("unclosed array expect ]")
        text = self.consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            return _Filter(_parse_action(text), _Action(()), "exists")
        return _Filter(_parse_action(match.group(1)), _parse_action(match.group(3)), match.group(2))

    def parse_quote(self, quote: str) -> _Text:
        while True:
            char = self.next()
            if char in (_EOF, "\n"):
                raise _ParseError("unterminated quoted string")
            if char == quote and self.input[self.pos - 2] != "\\":
                break
        value = self.consume()
        try:
            return _Text(_unquote(value))
        except ValueError:
            raise _ParseError(f"unquote string {value} error invalid syntax") from None

    def parse_field(self) -> _Node:
        self.consume()
        while True:
            char = self.next()
            if char == "\\":
                self.next()
            elif _is_terminator(char):
                self.backup()
                break
        value = self.consume()
        if value == "*":
            return _Wildcard()
        return _Field(value.replace("\\", ""))


def _parse_action(text: str) -> _Action:
    """Parse `text` as the inside of one action (used for filter operands and union branches)."""
    parsed = _Parser("{" + text + "}").parse()
    first = parsed[0]
    assert isinstance(first, _Action)  # the text starts with "{", so an action comes first
    return first


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote(quoted: str) -> str:
    """Go's strconv.Unquote extended to single-quoted strings (client-go's UnquoteExtend)."""
    if len(quoted) < 2 or quoted[0] != quoted[-1] or quoted[0] not in ("'", '"'):
        raise ValueError(quoted)
    quote, body = quoted[0], quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == quote:
            raise ValueError(quoted)
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError(quoted)
        escape = body[i + 1]
        i += 2
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
        elif escape in ("'", '"'):
            if escape != quote:
                raise ValueError(quoted)
            out.append(escape)
        elif escape in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[i : i + size]
            if len(digits) != size or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ValueError(quoted)
            out.append(chr(int(digits, 16)))
            i += size
        elif escape in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise ValueError(quoted)
            out.append(chr(int(digits, 8)))
            i += 2
        else:
            raise ValueError(quoted)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Blocks: `{range ...}` ... `{end}` grouped into a tree before evaluation


@dataclass
class _Range:
    action: _Action
    body: list[_Block] = field(default_factory=list)
    closed: bool = False


@dataclass(frozen=True)
class _End:
    pass


_Block = _Text | _Action | _Range | _End


def _has_identifier(action: _Action, name: str) -> bool:
    return any(isinstance(node, _Identifier) and node.name == name for node in action.nodes)


def _group_blocks(items: Sequence[_Text | _Action]) -> list[_Block]:
    top: list[_Block] = []
    stack: list[_Range] = []
    for item in items:
        target = stack[-1].body if stack else top
        if isinstance(item, _Action) and _has_identifier(item, "range"):
            opened = _Range(item)
            target.append(opened)
            stack.append(opened)
        elif isinstance(item, _Action) and _has_identifier(item, "end"):
            if stack:
                stack.pop().closed = True
            else:
                target.append(_End())  # fails when reached: "not in range, nothing to end"
        else:
            target.append(item)
    return top


# ---------------------------------------------------------------------------------------------
# Evaluation


class _Evaluator:
    def __init__(self, allow_missing_keys: bool) -> None:
        self.allow_missing_keys = allow_missing_keys

    def run(self, blocks: Sequence[_Block], data: Any, in_range: bool = False) -> list[list[Any]]:
        results: list[list[Any]] = []
        for block in blocks:
            if isinstance(block, _Text):
                results.append([block.text])
            elif isinstance(block, _End):
                if not in_range:
                    raise _EvalError("not in range, nothing to end", [])
            elif isinstance(block, _Range):
                values = self.eval_action([data], block.action)
                if values:
                    for value in values:
                        results.extend(self.run(block.body, value, in_range=True))
                else:
                    # Nothing to iterate over, but the body is still checked, as kubectl does.
                    self.run(block.body, None, in_range=True)
                if not block.closed:  # kubectl then carries on with the same nodes at this level
                    results.extend(self.run(block.body, data, in_range))
            else:
                results.append(self.eval_action([data], block))
        return results

    def eval_action(self, values: list[Any], action: _Action) -> list[Any]:
        current = values
        for node in action.nodes:
            current = self.walk(current, node)
        return current

    def walk(self, values: list[Any], node: _Node) -> list[Any]:
        if isinstance(node, _Action):
            return self.eval_action(values, node)
        if isinstance(node, _Text):
            return [node.text]
        if isinstance(node, _Field):
            return self.eval_field(values, node.name)
        if isinstance(node, _Slice):
            return self.eval_slice(values, node)
        if isinstance(node, _Filter):
            return self.eval_filter(values, node)
        if isinstance(node, (_Int, _Float, _Bool)):
            return [node.value for _ in values]
        if isinstance(node, _Wildcard):
            return [child for value in values for child in _children(value)]
        if isinstance(node, _Recursive):
            return _descend(values)
        if isinstance(node, _Union):
            out: list[Any] = []
            for branch in node.branches:
                try:
                    out.extend(self.eval_action(values, branch))
                except _EvalError as error:
                    raise _EvalError(str(error), values) from None
            return out
        if node.name == "range":
            return values
        if node.name == "end":
            return []
        raise _EvalError(f"unrecognized identifier {node.name}", values)

    def eval_field(self, values: list[Any], name: str) -> list[Any]:
        if not values:
            return []
        found = [value[name] for value in values if isinstance(value, Mapping) and name in value]
        if not found and not self.allow_missing_keys:
            raise _EvalError(f"{name} is not found", [])
        return found

    def eval_slice(self, values: list[Any], node: _Slice) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list):
                raise _EvalError(f"{_go_type(value)} is not array or slice", values)
            length = len(value)
            start = node.start if node.start is not None else 0
            if start < 0:
                start += length
            end = node.end if node.end is not None else length
            if end < 0 or (end == 0 and node.end_derived):
                end += length
            if end == start:  # asking for nothing is allowed, even out of range
                return out
            if start >= length or start < 0:
                raise _EvalError(f"array index out of bounds: index {start}, length {length}", values)
            if end > length or end < 0:
                raise _EvalError(f"array index out of bounds: index {end - 1}, length {length}", values)
            if start > end:
                raise _EvalError(f"starting index {start} is greater than ending index {end}", values)
            step = 1
            if node.step is not None:
                if node.step <= 0:
                    raise _EvalError("step must be > 0", values)
                step = node.step
            out.extend(value[start:end:step])
        return out

    def eval_filter(self, values: list[Any], node: _Filter) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise _EvalError(f"{_go_value(value)} is not array or slice and cannot be filtered", values)
            for item in value:
                try:
                    lefts = self.eval_action([item], node.left)
                    left_error: _EvalError | None = None
                except _EvalError as error:
                    lefts, left_error = error.partial, error
                if node.operator == "exists":
                    if lefts:
                        out.append(item)
                    continue
                if left_error is not None:
                    raise _EvalError(str(left_error), values)
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise _EvalError("can only compare one element at a time", values)
                rights = self.eval_action([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise _EvalError("can only compare one element at a time", values)
                if _compare(node.operator, lefts[0], rights[0]):
                    out.append(item)
        return out


def _children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [value[key] for key in sorted(value)]
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return list(value.encode())  # Go indexes a string by byte
    return []


def _descend(values: list[Any]) -> list[Any]:
    """Every value that has children, and all of theirs, depth first (client-go's `..`)."""
    out: list[Any] = []
    for value in values:
        children = _children(value)
        if children:
            out.append(value)
            out.extend(_descend(children))
    return out


# Go text/template comparison rules: same basic kind, or an error.
_BAD_TYPE = "invalid type for comparison"
_INCOMPATIBLE = "incompatible types for comparison"


def _basic_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise _EvalError(_BAD_TYPE, [])


def _equal(left: Any, right: Any) -> bool:
    if _basic_kind(left) != _basic_kind(right):
        raise _EvalError(_INCOMPATIBLE, [])
    return bool(left == right)


def _less(left: Any, right: Any) -> bool:
    kind = _basic_kind(left)
    if kind != _basic_kind(right):
        raise _EvalError(_INCOMPATIBLE, [])
    if kind == "bool":
        raise _EvalError(_BAD_TYPE, [])
    return bool(left < right)


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if operator == "<":
        return _less(left, right)
    if operator == "<=":
        return _less(left, right) or _equal(left, right)
    if operator == ">":
        return not (_less(left, right) or _equal(left, right))
    if operator == ">=":
        return not _less(left, right)
    raise _EvalError(f"unrecognized filter operator {operator}", [])


# ---------------------------------------------------------------------------------------------
# Go-compatible formatting


def _decimal_parts(number: float) -> tuple[str, str, int]:
    """(sign, shortest round-trip digits, decimal point position) of a finite float."""
    decimal = Decimal(repr(number))
    sign, digits, exponent = decimal.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exponent if text != "0" else 1
    return ("-" if sign else ""), text, point


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _exponent(digits: str, point: int, min_exp_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):0{min_exp_digits}d}"


def go_format_float(number: float) -> str:
    """Go's `fmt.Print(float64)` (strconv 'g', shortest): "1.5", "3", "1e+06", "1e-07"."""
    if number != number or number in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(number)]
    sign, digits, point = _decimal_parts(number)
    exp = point - 1
    if exp < -4 or exp >= 6:  # shortest precision uses 6 as the %e threshold
        return sign + _exponent(digits, point, 2)
    return sign + _fixed(digits, point)


def go_json_float(number: float) -> str:
    """Go's encoding/json float64: fixed notation unless < 1e-6 or >= 1e21 ("1e-7", "1e+21")."""
    sign, digits, point = _decimal_parts(number)
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return sign + _exponent(digits, point, 1)
    return sign + _fixed(digits, point)


def go_json(value: Any, indent: int | None = None, *, sort_keys: bool = True) -> str:
    """Go's json.Marshal(Indent) of decoded JSON: sorted keys, HTML-safe escapes, Go floats."""
    pieces: list[str] = []
    _encode_json(value, indent, 0, pieces, sort_keys)
    return "".join(pieces)


def _encode_json(value: Any, indent: int | None, depth: int, out: list[str], sort_keys: bool = True) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        out.append("{")
        keys = sorted(value, key=str) if sort_keys else list(value)
        for index, key in enumerate(keys):
            if index:
                out.append(",")
            _newline(indent, depth + 1, out)
            out.append(_go_json_string(str(key)))
            out.append(": " if indent is not None else ":")
            _encode_json(value[key], indent, depth + 1, out, sort_keys)
        _newline(indent, depth, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _newline(indent, depth + 1, out)
            _encode_json(item, indent, depth + 1, out, sort_keys)
        _newline(indent, depth, out)
        out.append("]")
    elif isinstance(value, str):
        out.append(_go_json_string(value))
    elif value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_json_float(value))
    else:
        out.append(_go_json_string(str(value)))


def _newline(indent: int | None, depth: int, out: list[str]) -> None:
    if indent is not None:
        out.append("\n" + " " * (indent * depth))


def _go_json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(raw, escaped)
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _to_text(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple)):
        return go_json(value)
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_format_float(value)
    return str(value)


def _go_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "interface {}"


def _go_value(value: Any) -> str:
    """Go's `%v` of decoded JSON: `map[a:1 b:[x y]]`, `<nil>`."""
    if value is None:
        return "<nil>"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return _to_text(value)


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _go_sharp_value(value: Any) -> str:
    """Go's `%#v` of decoded JSON, as kubectl prints the object in its error message."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, Mapping):
        entries = ", ".join(
            f"{_go_quote(str(k))}:{_go_sharp_value(value[k])}" for k in sorted(value, key=str)
        )
        return "map[string]interface {}{" + entries + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_sharp_value(v) for v in value) + "}"
    if isinstance(value, str):
        return _go_quote(value)
    return _to_text(value)


# ---------------------------------------------------------------------------------------------
# Public API


def parse_jsonpath(template: str) -> None:
    """Check that `template` parses; raises JSONPathError with kubectl's message if not."""
    _compile(template)


def _compile(template: str) -> list[_Block]:
    try:
        return _group_blocks(_Parser(template).parse())
    except _ParseError as error:
        raise JSONPathError(f"error parsing jsonpath {template}, {error}\n") from None


def find_results(template: str, data: Any, *, allow_missing_keys: bool = True) -> list[list[Any]]:
    """The values each action of `template` selects from `data`, one list per printed action."""
    blocks = _compile(template)
    try:
        return _Evaluator(allow_missing_keys).run(blocks, data)
    except _EvalError as error:
        raise JSONPathError(
            f"error executing jsonpath {_go_quote(template)}: Error executing template: {error}. "
            "Printing more information for debugging the template:\n"
            f"\ttemplate was:\n\t\t{template}\n"
            f"\tobject given to jsonpath engine was:\n\t\t{_go_sharp_value(data)}\n\n"
        ) from None


def render_jsonpath(
    template: str, data: Any, *, allow_missing_keys: bool = True, as_json: bool = False
) -> str:
    """`-o jsonpath=TEMPLATE` over `data` (an object, or the `List` kubectl builds for several).

    `allow_missing_keys` is kubectl's default for `get`: a missing key prints nothing instead of
    failing. `as_json` is `-o jsonpath-as-json`: each action's results as an indented JSON array.
    """
    out: list[str] = []
    for results in find_results(template, data, allow_missing_keys=allow_missing_keys):
        if as_json:
            out.append(go_json(results, indent=4) + "\n")
        else:
            out.append(" ".join(_to_text(value) for value in results))
    return "".join(out)


_RELAXED = re.compile(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$")


def relaxed_jsonpath_expression(expression: str) -> str:
    """kubectl's RelaxedJSONPathExpression (custom-columns, --sort-by): `a.b`, `.a.b`, `{a.b}`
    and `{.a.b}` all become `{.a.b}`. `-o jsonpath` does not do this: there `.a.b` is plain text.
    """
    if not expression:
        return expression
    match = _RELAXED.match(expression)
    if match is None:
        raise JSONPathError(
            "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' "
            "or '{.name1.name2}'"
        )
    return "{." + (match.group(1) or match.group(2)) + "}"
