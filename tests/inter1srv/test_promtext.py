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
