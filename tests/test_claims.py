"""rlcourse.expect: the one-line claim checks that notebooks make about trained runs."""

import json
import math

import pytest
import torch

import rlcourse
from rlcourse.classroom import claims
from rlcourse.classroom.display import rounded


def test_a_claim_in_its_band_prints_one_stable_line(capsys):
    rlcourse.expect("accuracy above chance", 0.8034, low=0.5)
    rlcourse.expect("KL below 15 nats", torch.tensor(7.46), high=15)
    rlcourse.expect("gap within 5 points", 4.7, 0.0, 5.0)
    rlcourse.expect("dense beats sparse", True)
    assert capsys.readouterr().out == ("✓ accuracy above chance\n✓ KL below 15 nats\n"
                                       "✓ gap within 5 points\n✓ dense beats sparse\n")


@pytest.mark.parametrize("value, low, high", [(0.49, 0.5, None), (15.01, None, 15), (5.2, 0.0, 5.0),
                                              (-0.1, 0.0, 5.0), (math.nan, None, 1.0), (False, None, None)])
def test_a_failed_claim_raises_naming_the_value_and_the_band(value, low, high, capsys):
    with pytest.raises(claims.ClaimError, match="claim failed: the claim: got") as info:
        rlcourse.expect("the claim", value, low, high)
    assert str(value) in str(info.value) or f"{value:.6g}" in str(info.value)
    assert capsys.readouterr().out == ""  # no ✓ line for a failed claim
    assert isinstance(info.value, AssertionError)


def test_bounds_are_inclusive():
    rlcourse.expect("at the edges", 5.0, 5.0, 5.0)


def test_a_bool_with_bounds_or_a_number_without_is_a_usage_error():
    with pytest.raises(ValueError, match="give a bool without bounds"):
        rlcourse.expect("x", True, low=0)
    with pytest.raises(ValueError, match="give a bool without bounds"):
        rlcourse.expect("x", 0.3)


def test_claims_are_logged_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(claims.LOG_ENV, str(log))
    rlcourse.expect("a", 0.25, 0.0, 1.0)
    with pytest.raises(claims.ClaimError):
        rlcourse.expect("b", 2.0, high=1.0)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows == [{"claim": "a", "value": 0.25, "low": 0.0, "high": 1.0, "ok": True},
                    {"claim": "b", "value": 2.0, "low": None, "high": 1.0, "ok": False}]


def test_rounded_never_prints_minus_zero():
    x = torch.tensor([-1e-9, -0.004, 0.126, -0.126])
    assert str(rounded(x)) == "tensor([ 0.0000,  0.0000,  0.1300, -0.1300])"
    assert not any(str(v).startswith("-0.0") and v == 0 for v in rounded(x).tolist())
    assert all(math.copysign(1.0, v) > 0 for v in rounded(x)[:2].tolist())


def test_doctests():
    import doctest

    from rlcourse.classroom import display

    for module in (claims, display):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted >= 1, module.__name__
