"""IntOrString helpers (`maxSurge: 1` or `maxSurge: "25%"`), as in `k8s.io/apimachinery/pkg/util/intstr`.

In kplane an IntOrString is a plain Python `int | str`. The arithmetic deliberately uses float64,
exactly as upstream does (`math.Ceil(float64(v) * float64(total) / 100)`), so that rounding at
the edges matches Kubernetes bit for bit.
"""

from __future__ import annotations

import math
import re
from typing import Final

IntOrString = int | str

_ATOI_RE: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_PERCENT_RE: Final = re.compile(r"[0-9]+%")


def is_percent(value: object) -> bool:
    """True if `value` is a string ending in "%" (it may still not be a valid percentage)."""
    return isinstance(value, str) and value.endswith("%")


def is_valid_percent(value: str) -> bool:
    """IsValidPercent, as API validation uses it: digits followed by "%"."""
    return bool(_PERCENT_RE.fullmatch(value))


def _atoi(s: str) -> int:
    # strconv.Atoi: optional sign, ASCII digits, within int64; errors worded like Go's.
    if not _ATOI_RE.fullmatch(s):
        raise ValueError(f'strconv.Atoi: parsing "{s}": invalid syntax')
    n = int(s)
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise ValueError(f'strconv.Atoi: parsing "{s}": value out of range')
    return n


def _int_or_percent(value: IntOrString) -> tuple[int, bool]:
    """(number, is_percent) or ValueError, like getIntOrPercentValueSafely."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, False
    if isinstance(value, str):
        if not value.endswith("%"):
            raise ValueError("invalid type: string is not a percentage")
        try:
            return _atoi(value[:-1]), True
        except ValueError as e:
            raise ValueError(f'invalid value "{value}": {e}') from None
    raise ValueError("invalid type: neither int nor percentage")


def get_scaled_value_from_int_or_percent(value: IntOrString | None, total: int, round_up: bool) -> int:
    """GetScaledValueFromIntOrPercent: an int as is, "p%" as p% of `total` rounded up or down.

    Raises ValueError("nil value for IntOrString") for None and
    ValueError("invalid value for IntOrString: ...") for a string that is not "<int>%".
    """
    if value is None:
        raise ValueError("nil value for IntOrString")
    try:
        number, percent = _int_or_percent(value)
    except ValueError as e:
        raise ValueError(f"invalid value for IntOrString: {e}") from None
    if not percent:
        return number
    scaled = float(number) * float(total) / 100  # float64, as upstream
    return int(math.ceil(scaled) if round_up else math.floor(scaled))


def resolve_fenceposts(
    max_surge: IntOrString | None, max_unavailable: IntOrString | None, desired: int
) -> tuple[int, int]:
    """ResolveFenceposts: absolute (surge, unavailable) for a rolling update of `desired` replicas.

    None means 0. Surge rounds up and unavailable rounds down; if both come out 0, unavailable
    becomes 1 so the rollout can make progress. Raises ValueError for an invalid value.
    """
    surge = get_scaled_value_from_int_or_percent(0 if max_surge is None else max_surge, desired, True)
    unavailable = get_scaled_value_from_int_or_percent(
        0 if max_unavailable is None else max_unavailable, desired, False
    )
    if surge == 0 and unavailable == 0:
        # Validation forbids both being 0, but rounding unavailable down can still reach 0;
        # then allow one unavailable pod rather than stall (surge may be blocked by quota).
        unavailable = 1
    return surge, unavailable
