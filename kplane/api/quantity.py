"""Resource quantities (`"500m"`, `"1Gi"`, `"1e3"`) with Kubernetes' exact semantics.

A `Quantity` is an exact decimal (never a float) plus the *format* its suffix came in:
`DecimalSI` (`n u m "" k M G T P E`), `BinarySI` (`Ki Mi Gi Ti Pi Ei`) or `DecimalExponent`
(`e3`, `E-6`). It mirrors `k8s.io/apimachinery/pkg/api/resource.Quantity`:

- parsing rounds a non-zero value *up* (away from zero) to the next nano, caps BinarySI at
  2^63-1 and turns a BinarySI value strictly between -1 and 1 into DecimalSI;
- `str(q)` is Kubernetes' `String()`: the canonical form (largest suffix, no fraction, no
  precision lost), except that a parsed string Kubernetes already considers canonical is kept
  verbatim (`"+1"`, `"100.035k"` and `"1."` survive a round trip, exactly as on a real cluster);
- `value()` / `milli_value()` round up away from zero like `Value()` / `MilliValue()`, but are
  exact Python ints where Go would overflow int64.

Magnitudes are limited to below 10^1000 (and, for values not produced by parsing, above
10^-1000) so that a hostile exponent such as `1e999999999` is a clear error, not a
gigabyte-sized integer.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from typing import Any, Final, NoReturn

DECIMAL_SI: Final = "DecimalSI"
BINARY_SI: Final = "BinarySI"
DECIMAL_EXPONENT: Final = "DecimalExponent"
FORMATS: Final = (DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT)

_SPLIT_RE: Final = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG: Final = f"quantities must match the regular expression '{_SPLIT_RE}'"
ERR_NUMERIC: Final = "unable to parse numeric part of quantity"
ERR_SUFFIX: Final = "unable to parse quantity's suffix"

# Arithmetic must be exact: the context has unbounded precision and traps any rounding.
_EXACT: Final = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, Inexact, Overflow, DivisionByZero],
)
# Deliberate rounding (to nano, to an integer, to a scale) is always away from zero.
_ROUND_UP: Final = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    rounding=ROUND_UP,
    traps=[InvalidOperation, Overflow, DivisionByZero],
)

_NANO: Final = Decimal("1e-9")
_MAX_BINARY: Final = Decimal(2**63 - 1)
# Bounds on Decimal.adjusted() (the exponent of the most significant digit).
_MAX_ADJUSTED: Final = 999
_MIN_ADJUSTED: Final = -1000
# Scales accepted by scaled_value/round_up: enough for any representable quantity.
_SCALE_LIMIT: Final = 2000
# Go's fast path keeps at most 18 significant digits in an int64 (maxInt64Factors).
_MAX_INT64_FACTORS: Final = 18

_DECIMAL_SUFFIXES: Final[dict[str, int]] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}  # fmt: skip
_BINARY_SUFFIXES: Final[dict[str, int]] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX_FOR_EXPONENT: Final = {exp: suffix for suffix, exp in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIX_FOR_POWER: Final = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DIGITS: Final = frozenset("0123456789")


class Quantity:
    """An immutable, exact resource quantity. Equality, hashing and ordering use the value only."""

    __slots__ = ("_fast_scale", "_format", "_s", "_value")

    _value: Decimal
    _format: str
    # The string returned by str(): the verbatim input when Kubernetes would keep it, else the
    # canonical form, computed lazily. Invariant: parsing _s gives back this exact quantity.
    _s: str | None
    # Kubernetes keeps some quantities as (int64, scale); RoundUp keeps the cached string when
    # the target scale is not above that scale. None when the quantity is not in that form.
    _fast_scale: int | None

    def __init__(self, value: int | Decimal = 0, fmt: str = DECIMAL_SI) -> None:
        """A quantity of exactly `value`; an unknown `fmt` renders as DecimalExponent (as upstream)."""
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise TypeError(f"quantity value must be an int or Decimal, not {type(value).__name__}")
        dec = Decimal(value)
        if not dec.is_finite():
            raise ValueError(f"quantity value must be finite, not {value}")
        self._init(dec, fmt, None, None)

    def _init(self, value: Decimal, fmt: str, s: str | None, fast_scale: int | None) -> None:
        if value.is_zero():
            value = Decimal(0)  # never keep a negative zero
        elif not _MIN_ADJUSTED <= value.adjusted() <= _MAX_ADJUSTED:
            raise ValueError(
                f"quantity out of range: magnitude must be between 1e{_MIN_ADJUSTED} and 1e{_MAX_ADJUSTED + 1}"
            )
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_format", fmt if fmt in FORMATS else DECIMAL_EXPONENT)
        object.__setattr__(self, "_s", s)
        object.__setattr__(self, "_fast_scale", fast_scale)

    @classmethod
    def _make(cls, value: Decimal, fmt: str, s: str | None = None, fast_scale: int | None = None) -> Quantity:
        q = cls.__new__(cls)
        q._init(value, fmt, s, fast_scale)
        return q

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Quantity is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Quantity is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (str(self._value), self._format, self._s, self._fast_scale))

    # ----- constructors -------------------------------------------------------------------

    @classmethod
    def parse(cls, s: str) -> Quantity:
        """Parse a quantity string exactly like `resource.ParseQuantity` (no surrounding spaces)."""
        if not isinstance(s, str):
            raise TypeError(f"quantity must be a string, not {type(s).__name__}")
        if s == "":
            raise ValueError(ERR_FORMAT_WRONG)
        if s == "0":
            return cls._make(Decimal(0), DECIMAL_SI, "0", 0)

        positive, number, num, denom, suffix = _scan_quantity(s)
        base, exponent, fmt = _interpret_suffix(suffix)

        # Kubernetes parses small inputs into an int64 "fast path" and, if the input is already
        # canonical by its rules, keeps the input string verbatim. Reproduce that decision.
        cached: str | None = None
        fast_scale: int | None = None
        if fmt == BINARY_SI:
            precision = 15 - len(num) - exponent * 3 // 10 - 1
            if not denom and precision >= 0:
                fast_scale = 0
                if int(num) & 0x07:
                    cached = s
        elif len(num) + len(denom) <= _MAX_INT64_FACTORS and exponent - len(denom) >= -9:
            fast_scale = exponent - len(denom)
            shifted = num + denom
            if fast_scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
                cached = s

        if fast_scale is None and not any(c in _DIGITS for c in number):
            raise ValueError(ERR_NUMERIC)  # e.g. "Ei" or "-Pi": no digits and no fast path
        amount = Decimal(number) if any(c in _DIGITS for c in number) else Decimal(0)
        amount = amount.copy_abs()
        if base == 10:
            # Decide the magnitude before scaling: an int64 exponent must not build a huge number.
            magnitude = amount.adjusted() + exponent
            if amount.is_zero():
                pass
            elif magnitude > _MAX_ADJUSTED:
                raise ValueError(f"quantity out of range: {s!r} is 1e{_MAX_ADJUSTED + 1} or more")
            elif magnitude < -10:
                amount = _NANO  # below a nano, which rounds up to exactly 1n
            else:
                amount = amount.scaleb(exponent, context=_EXACT)
        else:
            amount = _EXACT.multiply(amount, Decimal(1 << exponent))
        # Round a non-zero value up to the next nano: asking for a tiny amount still gets some.
        if not amount.is_zero():
            amount = amount.quantize(_NANO, context=_ROUND_UP)
        if fmt == BINARY_SI:
            amount = min(amount, _MAX_BINARY)
            if 0 < amount < 1:
                fmt = DECIMAL_SI
        return cls._make(amount if positive else amount.copy_negate(), fmt, cached, fast_scale)

    @classmethod
    def from_int(cls, n: int, fmt: str = DECIMAL_SI) -> Quantity:
        """`resource.NewQuantity(n, fmt)`."""
        return cls.from_scaled(n, 0, fmt)

    @classmethod
    def from_milli(cls, n: int, fmt: str = DECIMAL_SI) -> Quantity:
        """`resource.NewMilliQuantity(n, fmt)`: the value n/1000."""
        return cls.from_scaled(n, -3, fmt)

    @classmethod
    def from_scaled(cls, n: int, scale: int, fmt: str = DECIMAL_SI) -> Quantity:
        """`resource.NewScaledQuantity(n, scale)`: the value n * 10^scale (not rounded)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"quantity value must be an int, not {type(n).__name__}")
        if n == 0:
            return cls._make(Decimal(0), fmt, None, scale)
        mantissa = Decimal(n)
        if not _MIN_ADJUSTED <= mantissa.adjusted() + scale <= _MAX_ADJUSTED:
            raise ValueError(f"quantity out of range: {n}e{scale}")
        return cls._make(mantissa.scaleb(scale, context=_EXACT), fmt, None, scale)

    @classmethod
    def from_json(cls, value: object) -> Quantity:
        """Decode a JSON quantity like `UnmarshalJSON`: a string (surrounding whitespace trimmed) or number.

        A float loses the literal's spelling (`1e3` arrives as `1000.0`); a codec that wants the
        exact format of a bare JSON number should pass the number's source text as a string.
        """
        if isinstance(value, bool) or value is None:
            raise ValueError(f"quantity must be a string or a number, not {value!r}")
        if isinstance(value, int):
            return cls.parse(str(value))
        if isinstance(value, float):
            return cls.parse(repr(value))
        if isinstance(value, str):
            return cls.parse(value.strip(" \t\n\r\f\v"))
        raise ValueError(f"quantity must be a string or a number, not {type(value).__name__}")

    # ----- accessors ----------------------------------------------------------------------

    @property
    def format(self) -> str:
        """`DecimalSI`, `BinarySI` or `DecimalExponent`."""
        return self._format

    def as_decimal(self) -> Decimal:
        """The exact value."""
        return self._value

    def as_fraction(self) -> Fraction:
        """The exact value as a Fraction."""
        return Fraction(self._value)

    def is_zero(self) -> bool:
        return self._value.is_zero()

    def sign(self) -> int:
        """-1, 0 or 1."""
        return 0 if self._value.is_zero() else (-1 if self._value < 0 else 1)

    def value(self) -> int:
        """`Value()`: the value rounded up (away from zero) to an integer; exact, never overflows."""
        return self.scaled_value(0)

    def milli_value(self) -> int:
        """`MilliValue()`: ceil(q * 1000), rounding away from zero; exact, never overflows."""
        return self.scaled_value(-3)

    def scaled_value(self, scale: int) -> int:
        """`ScaledValue(scale)`: q / 10^scale rounded away from zero."""
        if not -_SCALE_LIMIT <= scale <= _SCALE_LIMIT:
            raise ValueError(f"scale out of range: {scale}")
        scaled = self._value.scaleb(-scale, context=_EXACT)
        return int(scaled.to_integral_value(context=_ROUND_UP))

    def round_up(self, scale: int) -> tuple[Quantity, bool]:
        """`RoundUp(scale)`: the value rounded away from zero to a multiple of 10^scale, and whether that was exact."""
        if not -_SCALE_LIMIT <= scale <= _SCALE_LIMIT:
            raise ValueError(f"scale out of range: {scale}")
        if self._fast_scale is not None and self._fast_scale >= scale:
            return self, True  # already a multiple of 10^scale; upstream keeps the string too
        exponent = self._value.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent >= scale:
            rounded = self._value  # already a multiple: skip padding the coefficient with zeros
        else:
            rounded = self._value.quantize(Decimal(1).scaleb(scale, context=_EXACT), context=_ROUND_UP)
        return Quantity._make(rounded, self._format, None, scale), rounded == self._value

    # ----- rendering ----------------------------------------------------------------------

    def __str__(self) -> str:
        if self._s is None:
            object.__setattr__(self, "_s", _canonical(self._value, self._format))
        assert self._s is not None
        return self._s

    def canonical(self) -> str:
        """The canonical form even if the quantity was parsed from a non-canonical string Kubernetes keeps."""
        return _canonical(self._value, self._format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    # ----- arithmetic and comparison ------------------------------------------------------

    def __add__(self, other: Quantity) -> Quantity:
        """`Add`: the result keeps this quantity's format, or takes `other`'s when this one is zero."""
        if not isinstance(other, Quantity):
            return NotImplemented
        fmt = other._format if self.is_zero() else self._format
        return Quantity._make(_EXACT.add(self._value, other._value), fmt)

    def __radd__(self, other: object) -> Quantity:
        # Only so that sum(quantities) works: sum starts from the int 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: Quantity) -> Quantity:
        """`Sub`: the result keeps this quantity's format, or takes `other`'s when this one is zero."""
        if not isinstance(other, Quantity):
            return NotImplemented
        fmt = other._format if self.is_zero() else self._format
        return Quantity._make(_EXACT.subtract(self._value, other._value), fmt)

    def __neg__(self) -> Quantity:
        return Quantity._make(_EXACT.minus(self._value), self._format)

    def __abs__(self) -> Quantity:
        return self if self._value >= 0 else -self

    def __mul__(self, other: int) -> Quantity:
        """`Mul(int)`: multiply by an integer, keeping the format."""
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        return Quantity._make(_EXACT.multiply(self._value, Decimal(other)), self._format)

    __rmul__ = __mul__

    def cmp(self, other: Quantity) -> int:
        """`Cmp`: -1, 0 or 1."""
        return (self._value > other._value) - (self._value < other._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __lt__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._value < other._value

    def __le__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._value <= other._value

    def __gt__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._value > other._value

    def __ge__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._value >= other._value

    def __copy__(self) -> Quantity:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Quantity:
        return self


def canonicalize(s: str) -> str:
    """What Kubernetes stores for quantity string `s`: `ParseQuantity(s).String()`."""
    return str(Quantity.parse(s))


def parse_quantity(s: str) -> Quantity:
    """Alias of `Quantity.parse`."""
    return Quantity.parse(s)


def _restore(value: str, fmt: str, s: str | None, fast_scale: int | None) -> Quantity:
    return Quantity._make(Decimal(value), fmt, s, fast_scale)


def _scan_quantity(s: str) -> tuple[bool, str, str, str, str]:
    """Split `s` like upstream's parseQuantityString: (positive, number, num, denom, suffix).

    `number` is the signed numeric text before the suffix, `num` the integer digits without
    leading zeros ("0" if none), `denom` the fraction digits. Raises ERR_FORMAT_WRONG.
    """
    end = len(s)
    pos = 0
    positive = True
    if s[0] == "-":
        positive = False
        pos = 1
    elif s[0] == "+":
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""  # only a sign and zeros
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
    number = s[:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, number, num, denom, s[suffix_start:]


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix, or ERR_SUFFIX."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:].lstrip("+-")
        # Go's strconv.ParseInt: one optional sign, then decimal digits, within int64.
        if len(suffix) - len(digits) <= 2 and digits and all(c in _DIGITS for c in digits):
            exponent = int(suffix[1:])
            if -(2**63) <= exponent < 2**63:
                return 10, exponent, DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def _canonical(value: Decimal, fmt: str) -> str:
    """CanonicalizeBytes: the largest suffix of the format that loses no precision."""
    if value.is_zero():
        return "0"
    if fmt == BINARY_SI:
        if -1024 < value < 1024:
            fmt = DECIMAL_SI
        else:
            rounded = value.to_integral_value(context=_ROUND_UP)
            if rounded != value:
                fmt = DECIMAL_SI  # a fractional binary quantity would lose precision
            else:
                return _binary_canonical(int(rounded))
    sign, digits, exponent = _EXACT.normalize(value).as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    # Make the exponent a multiple of 3 by moving digits into the mantissa.
    shift = exponent % 3
    mantissa += "0" * shift
    exponent -= shift
    if fmt == DECIMAL_SI and exponent in _DECIMAL_SUFFIX_FOR_EXPONENT:
        suffix = _DECIMAL_SUFFIX_FOR_EXPONENT[exponent]
    elif exponent == 0:
        suffix = ""
    else:
        # DecimalExponent, or a DecimalSI value beyond E / below n (upstream falls back to "e").
        suffix = f"e{exponent}"
    return ("-" if sign else "") + mantissa + suffix


def _binary_canonical(n: int) -> str:
    power = 0
    # Ei is the largest binary suffix; anything larger stays a multiple of Ei.
    while power < len(_BINARY_SUFFIX_FOR_POWER) - 1 and abs(n) >= 1024 and n % 1024 == 0:
        n //= 1024
        power += 1
    return f"{n}{_BINARY_SUFFIX_FOR_POWER[power]}"
