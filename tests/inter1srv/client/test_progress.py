"""Progress on stderr: redrawn bar on a terminal, plain periodic lines otherwise."""

import io

from inter1srv.client.progress import Progress


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    p = Progress(20.0, stream=out, every=3600)
    p.sent, p.events, p.dropped = 4.5, 7, 1.0
    p.update(force=True)
    p.update()  # within the period: nothing
    p.clear()
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines == ["sent 4.5/20.0 s | 7 events | dropped 1.0 s"] * 2
    assert "\r" not in out.getvalue()


def test_bar_is_redrawn_in_place_on_a_terminal():
    out = io.StringIO()
    p = Progress(10.0, stream=out, tty=True)
    p.sent = 5.0
    p.update(force=True)
    assert out.getvalue().startswith("\r\033[K[") and " 50% sent 5.0/10.0 s" in out.getvalue()
    p.clear()
    assert out.getvalue().endswith("\r\033[K")
    p.sent = 10.0
    p.finish()
    assert "100%" in out.getvalue() and out.getvalue().endswith("\n")
