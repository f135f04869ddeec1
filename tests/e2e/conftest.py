import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import ServerProcess  # noqa: E402

from inter1srv.synthmedia import default_script, encode_webm  # noqa: E402

CLIP_SECONDS = 30.0


@pytest.fixture(scope="session")
def clip() -> bytes:
    """30 s of real VP8 + Opus WebM in MediaRecorder layout, with speech-like audio."""
    return encode_webm(default_script(CLIP_SECONDS), width=320, height=240, fps=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # the 1-byte split sends ~10^5 frames as fast as it can: over the default flood limit by design
    srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data", max_messages_per_second=0).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    servers = []

    def make(**settings) -> ServerProcess:
        srv = ServerProcess(tmp_path / f"data{len(servers)}", **settings).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
