"""The payout benchmark's CI gate: ``--min-rate R`` fails the run (exit 1)
when fewer than R members/s were paid; without it a slow run only misses its
target."""

from benchmarks import payout
from benchmarks.__main__ import parse_args


def _result(rate):
    return {"results": {"members_per_s": rate}}


def test_min_rate_is_parsed_into_the_payout_parameters():
    args = parse_args(["payout", "--quick", "--min-rate", "2500"])
    assert payout.params_for(args)["min_rate"] == 2500


def test_a_payout_below_the_min_rate_misses_the_gate():
    params = payout.params_for(parse_args(["payout", "--quick", "--min-rate", "2500"]))
    assert "2,499 members/s is below --min-rate 2500" in payout.gate(_result(2499), params)
    assert payout.gate(_result(2500), params) is None


def test_without_min_rate_there_is_no_gate():
    params = payout.params_for(parse_args(["payout", "--quick"]))
    assert payout.gate(_result(1), params) is None
