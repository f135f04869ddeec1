"""Per-session caches of per-frame work: keys, LRU eviction, trimming, forgetting."""

from workers.session_cache import FrameTimeCache, SessionCache, time_key


def test_time_key_is_whole_milliseconds():
    assert time_key(1.2344) == 1234 and time_key(1.2346) == 1235
    assert time_key(0.1 + 0.2) == time_key(0.3) == 300


def test_least_recently_used_session_is_evicted():
    cache: SessionCache[dict] = SessionCache(dict, max_sessions=2)
    cache.session("a")["x"] = 1
    cache.session("b")["x"] = 2
    cache.session("a")  # a is now the most recent
    cache.session("c")
    assert "a" in cache and "c" in cache and "b" not in cache
    assert len(cache) == 2
    assert cache.session("a") == {"x": 1}


def test_forget_drops_one_session():
    cache: SessionCache[dict] = SessionCache(dict)
    cache.session("a")["x"] = 1
    cache.session("b")["x"] = 2
    cache.forget("a")
    cache.forget("never-seen")
    assert "a" not in cache and cache.session("b") == {"x": 2}
    assert cache.session("a") == {}  # a session seen again starts empty


def test_frame_time_cache_drops_a_sessions_frames_before_a_time():
    cache: FrameTimeCache[int] = FrameTimeCache()
    entry = cache.session("s")
    for i in range(50):
        entry[time_key(i * 0.1)] = i
    cache.session("t")[0] = 1
    cache.drop_before("s", 2.9)
    assert sorted(entry) == [time_key(i * 0.1) for i in range(29, 50)]  # 2.9 s .. 4.9 s
    cache.drop_before("s", 100.0)
    cache.drop_before("never-seen", 1.0)
    assert cache.session("s") == {} and cache.session("t") == {0: 1}
    assert "never-seen" not in cache


def test_hit_rate():
    cache: SessionCache[dict] = SessionCache(dict)
    assert cache.hit_rate == 0.0
    cache.hits, cache.misses = 3, 1
    assert cache.hit_rate == 0.75
