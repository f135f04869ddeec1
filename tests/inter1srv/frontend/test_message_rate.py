"""Token buckets of the per-session flood limits (time is passed in: no sleeping)."""

from inter1srv.frontend.message_rate import MessageRate, TokenBucket


def test_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=10, burst=5)
    assert all(bucket.allow(0.0) for _ in range(5))
    assert not bucket.allow(0.0)
    assert bucket.allow(0.1)  # 0.1 s at 10/s earns one token
    assert not bucket.allow(0.1)
    assert sum(bucket.allow(10.0) for _ in range(10)) == 5, "savings are capped at the burst"


def test_zero_rate_disables_the_limit():
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.allow(0.0) for _ in range(10_000))


def test_text_messages_have_their_own_tighter_limit():
    rate = MessageRate(per_second=100, burst=100, text_per_second=1, text_burst=2)
    assert rate.admit(0.0, is_text=True) is None
    assert rate.admit(0.0, is_text=True) is None
    broken = rate.admit(0.0, is_text=True)
    assert broken is not None and "text messages" in broken
    # every message (the three texts too) spends from the shared bucket: 97 left for binary frames
    assert all(rate.admit(0.0, is_text=False) is None for _ in range(97)), "binary frames still pass"
    assert "messages per second" in (rate.admit(0.0, is_text=False) or "")


def test_a_steady_recorder_never_trips_the_defaults():
    rate = MessageRate(per_second=500, burst=5000, text_per_second=20, text_burst=100)
    t = 0.0
    for _ in range(36_000):  # an hour of 100 ms recorder chunks
        assert rate.admit(t, is_text=False) is None
        t += 0.1
