"""kplane.api.intstr against upstream's intstr and deployment-util vectors.

Of deployment_rolling.json only `intstr_scaled_value` and `resolve_fenceposts` exercise this
module; the other sections take whole Deployments and belong to the deployment controller's tests.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kplane.api.intstr import (
    get_scaled_value_from_int_or_percent,
    is_percent,
    is_valid_percent,
    resolve_fenceposts,
)

TABLE = "deployment_rolling.json"


def _int_or_string(spec: dict[str, Any] | None) -> int | str | None:
    if spec is None:
        return None
    return spec["int"] if "int" in spec else spec["str"]


@pytest.mark.conformance(TABLE, "intstr_scaled_value")
def test_scaled_value(case: dict[str, Any]) -> None:
    """Ints pass through, "p%" scales by total rounding up or down, anything else is an error."""
    value = _int_or_string(case["input"])
    if case["expect_error"]:
        with pytest.raises(ValueError):
            get_scaled_value_from_int_or_percent(value, case["total"], case["round_up"])
    else:
        assert (
            get_scaled_value_from_int_or_percent(value, case["total"], case["round_up"]) == case["expected"]
        )


@pytest.mark.conformance(TABLE, "resolve_fenceposts")
def test_resolve_fenceposts(case: dict[str, Any]) -> None:
    """Surge rounds up, unavailable rounds down, both zero means one unavailable, bad input is an error."""
    args = (case["max_surge"], case["max_unavailable"], case["desired"])
    if case["expect_error"]:
        with pytest.raises(ValueError):
            resolve_fenceposts(*args)
    else:
        assert resolve_fenceposts(*args) == (case["expected_surge"], case["expected_unavailable"])


def test_error_messages_match_upstream() -> None:
    """Errors carry upstream's wording, including strconv's."""
    cases = {
        "90": "invalid value for IntOrString: invalid type: string is not a percentage",
        "#%": 'invalid value for IntOrString: invalid value "#%": strconv.Atoi: parsing "#": invalid syntax',
        "%": 'invalid value for IntOrString: invalid value "%": strconv.Atoi: parsing "": invalid syntax',
        " 5%": 'invalid value for IntOrString: invalid value " 5%": strconv.Atoi: parsing " 5": invalid syntax',
    }
    for value, message in cases.items():
        with pytest.raises(ValueError) as info:
            get_scaled_value_from_int_or_percent(value, 10, True)
        assert str(info.value) == message
    with pytest.raises(ValueError, match=r"^nil value for IntOrString$"):
        get_scaled_value_from_int_or_percent(None, 10, True)
    with pytest.raises(ValueError, match="neither int nor percentage"):
        get_scaled_value_from_int_or_percent(True, 10, True)


def test_signed_and_large_percentages_follow_atoi() -> None:
    """Percent strings accept a sign like Atoi, and values beyond int64 are out of range."""
    assert get_scaled_value_from_int_or_percent("+50%", 3, True) == 2
    assert get_scaled_value_from_int_or_percent("-50%", 3, False) == -2
    with pytest.raises(ValueError, match="value out of range"):
        get_scaled_value_from_int_or_percent("99999999999999999999%", 3, False)


def test_percent_helpers() -> None:
    """is_percent checks the suffix only; is_valid_percent is validation's digits-then-% rule."""
    assert is_percent("25%") and is_percent("x%") and not is_percent(25) and not is_percent("25")
    assert is_valid_percent("25%") and not is_valid_percent("-5%") and not is_valid_percent("x%")


@given(st.integers(min_value=0, max_value=1000), st.integers(min_value=0, max_value=100_000))
def test_rounding_brackets_the_exact_share(percent: int, total: int) -> None:
    """Rounding down and up give floor and ceil of the exact share for realistic sizes."""
    down = get_scaled_value_from_int_or_percent(f"{percent}%", total, False)
    up = get_scaled_value_from_int_or_percent(f"{percent}%", total, True)
    exact = percent * total
    assert down == exact // 100
    assert up == math.ceil(exact / 100) == -(-exact // 100)
