from countermand.models import OUTCOME_CODES, Outcome, TargetResult, empty_counts


def test_result_round_trips_compactly() -> None:
    result = TargetResult(Outcome.CANCELED, attempts=2, updated_at=1763900000, http_status=200)
    encoded = result.encode()
    assert encoded == '["c",2,1763900000,200]'
    assert TargetResult.decode(encoded) == result


def test_result_keeps_errors_and_extras() -> None:
    result = TargetResult(
        Outcome.REJECTED, 1, 5, 400, "1004", "invalid parameter: é", {"n": 2, "ids": ["1", "2"]}
    )
    assert TargetResult.decode(result.encode()) == result


def test_not_final_results_are_written_as_queued_never_in_flight() -> None:
    marker = TargetResult(None, attempts=1, updated_at=3)
    assert marker.encode().startswith('["q"')  # '~' is begin.lua's own mark of a call on the wire
    assert not TargetResult.decode(marker.encode()).final
    assert not TargetResult.decode('["~",1,3]').final


def test_every_outcome_has_a_distinct_one_letter_code() -> None:
    codes = [OUTCOME_CODES[o] for o in Outcome]
    assert len(set(codes)) == len(Outcome)
    assert all(len(code) == 1 and code != "~" for code in codes)


def test_counts_have_every_outcome_and_remaining() -> None:
    assert set(empty_counts()) == {o.value for o in Outcome} | {"remaining"}
