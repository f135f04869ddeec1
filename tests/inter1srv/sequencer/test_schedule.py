from inter1srv.sequencer.ranges import complement, total, union
from inter1srv.sequencer.schedule import Commit, Dropped, SessionSchedule, WindowState


def _deliver(schedule, index):
    assert schedule.complete(index, {"index": index})


def test_windows_follow_media_time():
    s = SessionSchedule(window=8, hop=3)
    assert s.media_advanced(7.9) == []
    ready = s.media_advanced(14.2)
    assert [(w.start, w.end) for w in ready] == [(0, 8), (3, 11), (6, 14)]
    assert [(w.start, w.end) for w in s.media_advanced(17.0)] == [(9, 17)]


def test_in_order_commits_each_window_newest_part():
    s = SessionSchedule(window=8, hop=3)
    s.media_advanced(14)
    _deliver(s, 1)
    assert s.resolve() == []  # window 0 still pending: nothing may go out of order
    _deliver(s, 0)
    _deliver(s, 2)
    out = s.resolve()
    assert [(type(o).__name__, o.start, o.end) for o in out] == [
        ("Commit", 0, 8), ("Commit", 8, 11), ("Commit", 11, 14)
    ]
    assert s.frontier == 14


def test_close_adds_tail_window_and_bills_union():
    s = SessionSchedule(window=8, hop=3)
    tail = s.close(12.5)
    assert [(w.start, w.end, w.final) for w in tail] == [(0, 8, False), (3, 11, False), (4.5, 12.5, True)]
    for w in s.windows:
        _deliver(s, w.index)
    out = s.resolve()
    assert [(o.start, o.end) for o in out] == [(0, 8), (8, 11), (11, 12.5)]
    assert s.finished
    assert s.billed_ranges == [(0, 12.5)]
    assert total(s.billed_ranges) == 12.5


def test_short_stream_gets_one_window():
    s = SessionSchedule(window=8, hop=3)
    assert [(w.start, w.end) for w in s.close(2.0)] == [(0, 2.0)]


def test_shedding_prefers_redundant_windows_and_loses_no_coverage():
    s = SessionSchedule(window=8, hop=3)
    s.media_advanced(20)  # windows 0..4: [0,8) [3,11) [6,14) [9,17) [12,20)
    shed = s.choose_sheds(max_queued=3)
    assert [w.index for w in shed] == [1, 3]  # every other window is covered by its neighbours
    for w in s.windows:
        if w.state == WindowState.QUEUED:
            _deliver(s, w.index)
    out = s.resolve()
    assert all(isinstance(o, Commit) for o in out)
    assert s.billed_ranges == [(0, 20)]
    assert s.dropped == []


def test_shedding_beyond_redundancy_reports_dropped_seconds_not_billed():
    s = SessionSchedule(window=8, hop=3)
    s.media_advanced(26)  # windows 0..6
    s.choose_sheds(max_queued=2)
    kept = [w.index for w in s.windows if w.state == WindowState.QUEUED]
    assert len(kept) == 2
    for i in kept:
        _deliver(s, i)
    s.close(26)
    s.resolve()
    dropped = union(s.dropped)
    billed = s.billed_ranges
    assert dropped, "seconds nobody covers must be reported"
    # analysed and dropped partition the stream exactly
    assert complement(billed + dropped, 0, 26) == []
    assert abs(total(billed) + total(dropped) - 26) < 1e-6
    for a, b in dropped:
        assert complement(billed, a, b) == [(a, b)]


def test_failed_window_is_dropped_once_next_window_known():
    s = SessionSchedule(window=8, hop=3)
    s.media_advanced(8)
    s.fail(0)
    assert s.resolve() == []  # the next window's start is not known yet
    s.media_advanced(11)
    out = s.resolve()
    assert isinstance(out[0], Dropped) and (out[0].start, out[0].end) == (0, 3)
    _deliver(s, 1)
    out = s.resolve()
    assert [(o.start, o.end) for o in out] == [(3, 11)]


def test_late_result_of_shed_or_failed_window_is_ignored():
    s = SessionSchedule(window=8, hop=3)
    s.media_advanced(11)
    s.shed(1)
    assert not s.complete(1, {})
    s.fail(0)
    assert not s.complete(0, {})


def test_cancel_all_bills_nothing_pending():
    s = SessionSchedule(window=8, hop=3)
    s.media_advanced(14)
    _deliver(s, 0)
    s.resolve()
    cancelled = s.cancel_all()
    assert [w.index for w in cancelled] == [1, 2]
    assert s.billed_ranges == [(0, 8)]


def test_lead_in_windows_grow_before_the_first_full_one():
    s = SessionSchedule(window=8, hop=3, lead_in=True)
    assert s.lead_count == 2
    assert [(w.start, w.end) for w in s.media_advanced(3.0)] == [(0, 3)]
    assert [(w.start, w.end) for w in s.media_advanced(11.0)] == [(0, 6), (0, 8), (3, 11)]
    for w in s.windows:
        _deliver(s, w.index)
    out = s.resolve()
    # each commits its newest part: the first events cover [0, 3) after 3 s of media
    assert [(o.start, o.end) for o in out] == [(0, 3), (3, 6), (6, 8), (8, 11)]
    assert s.billed_ranges == [(0, 11)], "overlap is billed once"


def test_lead_in_windows_are_shed_first_and_lose_nothing():
    s = SessionSchedule(window=8, hop=3, lead_in=True)
    s.media_advanced(8.0)  # [0,3), [0,6), [0,8) queued at once: a backlog
    shed = s.choose_sheds(max_queued=1)
    assert [(w.start, w.end) for w in shed] == [(0, 3), (0, 6)], "the redundant lead-in windows go first"
    _deliver(s, 2)
    out = s.resolve()
    assert [(type(o).__name__, o.start, o.end) for o in out] == [("Commit", 0, 8)]
    assert s.dropped == []


def test_lead_in_with_a_session_shorter_than_a_window():
    s = SessionSchedule(window=8, hop=3, lead_in=True)
    ready = s.close(5.0)
    assert [(w.start, w.end, w.final) for w in ready] == [(0, 3, False), (0, 5, True)]
    for w in s.windows:
        _deliver(s, w.index)
    assert [(o.start, o.end) for o in s.resolve()] == [(0, 3), (3, 5)]
    assert s.finished and s.billed_ranges == [(0, 5)]


def test_lead_in_count_follows_window_and_hop():
    assert SessionSchedule(window=8, hop=4, lead_in=True).lead_count == 1
    assert SessionSchedule(window=6, hop=3, lead_in=True).lead_count == 1
    assert SessionSchedule(window=3, hop=3, lead_in=True).lead_count == 0
    assert SessionSchedule(window=8, hop=3).lead_count == 0
