"""Server settings: one dataclass, passed to child processes through the environment.

Every field can be set as ``INTER1SRV_<FIELD>`` (upper case), which is how the
supervisor configures its children and how systemd units are configured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from shm.media_ring import PIXEL_FORMATS

ENV_PREFIX = "INTER1SRV_"


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = os.path.expanduser("~/.local/share/inter1srv")
    workers: int = 1
    frontends: int = 1  # frontend processes sharing the port (SO_REUSEPORT)
    device: str = "auto"  # auto | cpu | cuda
    demo: int = 1  # serve the browser demo at / (INTER1SRV_DEMO=0 in production)
    ledger_url: str = ""  # empty: SQLite in the data dir; postgresql://user:pw@host/db for a fleet
    # sessions and protocol limits
    max_sessions: int = 16
    session_idle_timeout_seconds: int = 30
    session_max_duration_seconds: int = 3600
    max_segment_size_bytes: int = 32 * 1024 * 1024
    min_segment_size_bytes: int = 1
    max_upload_bytes: int = 32 * 1024 * 1024
    max_buffered_bytes: int = 16 * 1024 * 1024  # undecoded bytes per session before the socket is paused
    max_drain_seconds: int = 60
    slow_reader_seconds: float = 30.0  # a client whose socket takes no event for this long is cut off (1008)
    event_send_buffer_bytes: int = 256 * 1024  # kernel send buffer per connection (SO_SNDBUF); 0: kernel default
    # flood limits per session (token buckets; 0 disables): over them, ih4029 then close 1008
    max_messages_per_second: float = 500.0
    max_message_burst: int = 5000
    max_text_messages_per_second: float = 20.0
    max_text_message_burst: int = 100
    # analysis media
    analysis_fps: float = 10.0
    analysis_width: int = 320
    analysis_max_height: int = 240
    window_seconds: float = 8.0
    hop_seconds: float = 3.0
    lead_in_windows: int = 1  # growing windows [0, hop), [0, 2 hop) first: first events after one hop
    ring_seconds: float = 26.0
    ring_pixel_format: str = "yuv420p"  # analysis frames in the rings: yuv420p (1.5 bytes a pixel) or rgb24 (3)
    backpressure_seconds: float = 14.0
    # scheduling
    batch_max: int = 8
    batch_wait_ms: float = 20.0
    shed_queue_depth: int = 2
    live_window_deadline_seconds: float = 8.0
    window_max_attempts: int = 2
    watchdog_seconds: float = 30.0  # serve's watchdog: a role silent this long is killed and restarted
    # identity of this server instance (segment prefix); set by the supervisor
    instance_pid: int = 0

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):  # which GPU: the supervisor sets CUDA_VISIBLE_DEVICES
            raise ValueError(f"{ENV_PREFIX}DEVICE={self.device!r}: one of auto, cpu, cuda "
                             "(each worker is given one GPU of CUDA_VISIBLE_DEVICES in turn)")
        if self.ring_pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"{ENV_PREFIX}RING_PIXEL_FORMAT={self.ring_pixel_format!r}: "
                             f"one of {', '.join(PIXEL_FORMATS)}")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def control_socket(self) -> str:
        """The sequencer's Unix socket (kept under the 107-byte sun_path limit)."""
        path = self.data_path / "run" / "sequencer.sock"
        if len(str(path)) < 100:
            return str(path)
        tag = hashlib.sha1(str(self.data_path).encode()).hexdigest()[:12]
        return os.path.join(tempfile.gettempdir(), f"inter1srv-{tag}.sock")

    def to_env(self) -> dict[str, str]:
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> ServerConfig:
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                try:
                    values[f.name] = _coerce(f, raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {f.type}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw
