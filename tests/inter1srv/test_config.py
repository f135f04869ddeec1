"""ServerConfig: settings from the environment, and the ones that cannot work refused before start-up."""

from __future__ import annotations

import pytest

from inter1srv.cli import main
from inter1srv.config import ServerConfig


def test_settings_come_from_the_environment():
    cfg = ServerConfig.from_env({"INTER1SRV_WORKERS": "3", "INTER1SRV_RING_PIXEL_FORMAT": "rgb24",
                                 "INTER1SRV_RING_SECONDS": "30.5"})
    assert (cfg.workers, cfg.ring_pixel_format, cfg.ring_seconds) == (3, "rgb24", 30.5)
    assert ServerConfig().ring_pixel_format == "yuv420p"  # half the shared memory of rgb24
    assert ServerConfig.from_env(cfg.to_env()) == cfg


@pytest.mark.parametrize("env, message", [
    ({"INTER1SRV_WORKERS": "two"}, "INTER1SRV_WORKERS='two' is not a valid int"),
    ({"INTER1SRV_RING_PIXEL_FORMAT": "bgr24"}, "INTER1SRV_RING_PIXEL_FORMAT='bgr24': one of rgb24, yuv420p"),
    ({"INTER1SRV_DEVICE": "cuda:1"}, "INTER1SRV_DEVICE='cuda:1': one of auto, cpu, cuda"),
])
def test_unusable_settings_are_named(env, message):
    with pytest.raises(ValueError) as info:
        ServerConfig.from_env(env)
    assert message in str(info.value)


def test_serve_refuses_them_before_starting_anything(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("INTER1SRV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INTER1SRV_RING_PIXEL_FORMAT", "rgba")
    assert main(["serve"]) == 2
    assert "inter1srv: INTER1SRV_RING_PIXEL_FORMAT='rgba'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing was started or written
