"""Retransmission schedule arithmetic against strongSwan's documented table (digest §6.2)."""

from __future__ import annotations

import pytest

from wansim.ike.timers import RetransmitSchedule


def test_strongswan_defaults_match_the_man_page_table():
    s = RetransmitSchedule()
    # strongswan.conf(5): retransmits at 4, 11, 24, 47, 89 s; give up at 165 s.
    assert [round(x, 2) for x in s.send_offsets_s()] == [0.0, 4.0, 11.2, 24.16, 47.49, 89.48]
    assert s.give_up_offset_s() == pytest.approx(165.06, abs=0.01)
    assert s.deadline_at(100.0, 1) == pytest.approx(104.0)
    assert s.deadline_at(100.0, 6) == pytest.approx(100 + 165.06, abs=0.01)
    assert not s.exhausted(5) and s.exhausted(6)


def test_libreswan_like_schedule_and_bad_values():
    s = RetransmitSchedule(timeout_s=0.5, base=2.0, tries=6)
    assert s.send_offsets_s()[-1] == pytest.approx(31.5)
    assert s.give_up_offset_s() == pytest.approx(63.5)
    with pytest.raises(ValueError):
        RetransmitSchedule(timeout_s=0)
    with pytest.raises(ValueError):
        s.deadline_at(0.0, 0)
