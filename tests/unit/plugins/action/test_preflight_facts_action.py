"""The clock-skew window of the preflight_facts action plugin."""

import pytest

from ansible_collections.aiquiz.ops.plugins.action.preflight_facts import skew_outside_window


@pytest.mark.parametrize("host_time, expected", [
    (100.0, 0.0),      # read when the module was sent
    (100.7, 0.0),      # inside the round trip
    (101.5, 0.0),      # read as the answer came back
    (104.0, 2.5),      # ahead of the latest possible controller time
    (97.0, -3.0),      # behind the earliest possible controller time
])
def test_only_the_offset_outside_the_round_trip_is_skew(host_time, expected):
    assert skew_outside_window(host_time, 100.0, 101.5) == pytest.approx(expected)


def test_a_slow_round_trip_is_not_mistaken_for_skew():
    # 8 s of connection and module start-up on a loaded controller.
    assert skew_outside_window(1000.0 + 7.9, 1000.0, 1008.0) == 0.0
