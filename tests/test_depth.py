"""Sleep depth decisions on literal histories."""

import pytest

from tasks.depth import SleepConfig, decide_depth

CFG = SleepConfig()


def test_auto_needs_enough_new_turns():
    assert decide_depth("auto", 0, [], CFG)[0] is None
    depth, why = decide_depth("auto", 4, [], CFG)
    assert depth is None and "only 4 new turn(s)" in why and "sleep.min_new_turns" in why
    assert decide_depth("auto", 5, [], CFG)[0] == "light"


def test_every_fifth_sleep_is_deep():
    assert decide_depth("auto", 9, ["light"] * 3, CFG)[0] == "light"
    assert decide_depth("auto", 9, ["light"] * 4, CFG)[0] == "deep"
    assert decide_depth("auto", 9, ["light"] * 4 + ["deep"], CFG)[0] == "light"
    assert decide_depth("auto", 9, ["light"], SleepConfig(deep_every=2))[0] == "deep"


def test_explicit_depths():
    assert decide_depth("light", 0, [], CFG)[0] is None
    assert decide_depth("light", 1, [], CFG)[0] == "light"
    assert decide_depth("deep", 0, [], CFG)[0] == "deep"
    with pytest.raises(ValueError, match="'rem' is not one of light, deep, auto"):
        decide_depth("rem", 1, [], CFG)
