from inter1srv.promtext import Histogram, render_histogram


def test_histogram_renders_cumulative_buckets():
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.5, 0.7, 3.0):
        h.observe(v)
    lines = render_histogram("x", h.snapshot(), "help")
    assert 'x_bucket{le="0.1"} 1' in lines
    assert 'x_bucket{le="1.0"} 3' in lines
    assert 'x_bucket{le="+Inf"} 4' in lines
    assert "x_count 4" in lines and "x_sum 4.25" in lines


def test_metrics_render_gpu_gauges_per_worker():
    from types import SimpleNamespace

    from inter1srv.config import ServerConfig
    from inter1srv.frontend.metrics import Metrics

    fe = SimpleNamespace(sessions={}, capacity_left=4, workers_up=1, cfg=ServerConfig(),
                         sequencer_stats={"devices": {"gpu0/7": {"gpu_memory_used_bytes": 1024.0}}})
    text = Metrics().render(fe)
    assert 'inter1srv_gpu_memory_used_bytes{worker="gpu0/7"} 1024.0' in text
