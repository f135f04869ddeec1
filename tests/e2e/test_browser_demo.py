"""The browser demo end to end: headless Chromium, a fake camera (a real face) and microphone (real speech).

Chromium is driven over the DevTools protocol directly (websockets), so the test
needs only the Debian ``chromium`` package; it is skipped when that is missing.
The page gets a client token from ``POST /v1/demo/token``, streams MediaRecorder
chunks through ``new WebSocket(url, ["access_token", token])``, and renders the
events; the screenshot is kept in ``test-artifacts/browser_demo.png``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import websockets

from inter1srv.synthmedia import Script, Segment, synth_audio, synth_frame

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTH, HEIGHT, FPS, VIDEO_SECONDS = 640, 480, 20, 6
SPEECH = ("Thanks for joining today. I think the plan is clear, and I am confident we can ship it next week. "
          "Let me walk you through the numbers. Well, hmm, I am not completely sure about the last part.")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _face(width: int, height: int) -> np.ndarray:
    """A real face (scikit-image's astronaut) on a plain background, else the synthetic head."""
    try:
        from skimage import data

        img = data.astronaut()
    except ImportError:
        return synth_frame(Script([Segment(1.0)]), 0.0, width, height)
    side = height
    idx = (np.arange(side) * img.shape[0] / side).astype(int)
    face = img[idx][:, idx]
    canvas = np.full((height, width, 3), (60, 70, 90), np.uint8)
    x0 = (width - side) // 2
    canvas[:, x0:x0 + side] = face
    return canvas


def write_y4m(path: Path) -> None:
    base = _face(WIDTH + 40, HEIGHT + 40)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(VIDEO_SECONDS * FPS):
            t = i / FPS
            dy = int(round(20 + 12 * np.sin(2 * np.pi * 1.5 * t)))  # a nod
            dx = int(round(20 + 6 * np.sin(2 * np.pi * 0.4 * t)))
            rgb = base[dy:dy + HEIGHT, dx:dx + WIDTH].astype(np.float32)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = (b - y) * 0.564 + 128
            v = (r - y) * 0.713 + 128
            sub = lambda p: p.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))  # noqa: E731
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(plane, 0, 255).astype(np.uint8).tobytes())


def write_wav(path: Path) -> None:
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-s", "150", "-g", "6", "-w", str(path), SPEECH], check=True,
                       capture_output=True)
        return
    samples = synth_audio(Script([Segment(8.0, speech=True), Segment(2.0, speech=False)]))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((samples * 32767).astype("<i2").tobytes())


class DevTools:
    """The DevTools protocol over one browser WebSocket, flattened sessions."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for message in self.ws:
            msg = json.loads(message)
            fut = self.pending.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def call(self, method: str, session: str | None = None, **params):
        i = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        msg = {"id": i, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def evaluate(self, session: str, expression: str):
        result = await self.call("Runtime.evaluate", session, expression=expression, returnByValue=True,
                                 awaitPromise=True)
        return result["result"].get("value")


def _launch(chromium: str, profile: Path, video: Path, audio: Path) -> subprocess.Popen:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}",
        f"--use-file-for-fake-audio-capture={audio}", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--remote-debugging-port=0", "--window-size=900,700", "--autoplay-policy=no-user-gesture-required",
        "about:blank",
    ]
    return subprocess.Popen([chromium, *flags], stdout=subprocess.DEVNULL, stderr=open(profile / "chromium.log", "wb"),
                            start_new_session=True)


def _devtools_url(profile: Path, proc: subprocess.Popen, timeout: float = 30.0) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("chromium exited: " + (profile / "chromium.log").read_text(errors="replace")[-2000:])
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")


async def _wait_for(dt: DevTools, session: str, expression: str, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await dt.evaluate(session, expression)
        if value:
            return value
        await asyncio.sleep(0.5)
    state = await dt.evaluate(session, "JSON.stringify({counts: window.inter1Demo && window.inter1Demo.counts, "
                                       "errors: window.inter1Demo && window.inter1Demo.errors, "
                                       "status: document.getElementById('status').textContent})")
    raise AssertionError(f"timed out waiting for {expression}: {state}")


async def _screenshot(dt: DevTools, session: str, path: Path) -> None:
    shot = await dt.call("Page.captureScreenshot", session, format="png")
    path.write_bytes(base64.b64decode(shot["data"]))


async def _drive(devtools_url: str, page_url: str) -> dict:
    async with websockets.connect(devtools_url, max_size=None) as ws:
        dt = DevTools(ws)
        target = await dt.call("Target.createTarget", url="about:blank")
        session = (await dt.call("Target.attachToTarget", targetId=target["targetId"], flatten=True))["sessionId"]
        await dt.call("Page.enable", session)
        await dt.call("Runtime.enable", session)
        await dt.call("Emulation.setDeviceMetricsOverride", session, width=900, height=700, deviceScaleFactor=1,
                      mobile=False)
        await dt.call("Page.navigate", session, url=page_url)
        await _wait_for(dt, session, "window.inter1Demo && window.inter1Demo.ready !== null", 30)
        # the first window (8 s of media) must come back and render
        await _wait_for(dt, session, "window.inter1Demo.counts['conversation_quality.updated'] >= 2 && "
                                     "document.querySelectorAll('#cqi-bars [data-dimension]').length == 6", 90)
        await _screenshot(dt, session, ARTIFACTS / "browser_demo.png")
        live = await dt.evaluate(session, """JSON.stringify({
            counts: window.inter1Demo.counts,
            engagement: document.getElementById('engagement-state').textContent,
            signalRows: document.querySelectorAll('#signal-list [data-signal]').length,
            feedback: document.getElementById('feedback-text').textContent,
            cqi: document.getElementById('cqi-bars').textContent})""")
        await dt.evaluate(session, "document.getElementById('stop').click()")
        await _wait_for(dt, session, "window.inter1Demo.ended !== null && window.inter1Demo.closeCode !== undefined",
                        60)
        await _screenshot(dt, session, ARTIFACTS / "browser_demo_ended.png")
        final = await dt.evaluate(session, """JSON.stringify({
            ended: window.inter1Demo.ended, closeCode: window.inter1Demo.closeCode,
            errors: window.inter1Demo.errors, endedText: document.getElementById('ended').textContent,
            types: window.inter1Demo.events.map(e => e.type)})""")
        dt.reader.cancel()
        return {"live": json.loads(live), "final": json.loads(final)}


@pytest.mark.timeout(240)
def test_browser_demo_streams_camera_and_renders_events(fresh_server, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    video, audio = tmp_path / "clip.y4m", tmp_path / "clip.wav"
    write_y4m(video)
    write_wav(audio)
    server = fresh_server()
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = _launch(chromium, profile, video, audio)
    try:
        result = asyncio.run(_drive(_devtools_url(profile, proc), f"http://{server.base}/?autostart=1"))
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    live, final = result["live"], result["final"]
    assert live["counts"].get("session.ready") == 1
    assert live["counts"].get("engagement.updated", 0) >= 1 and live["engagement"] in ("engaged", "neutral", "disengaged")
    assert "quality index" in live["cqi"]
    assert final["errors"] == [], final["errors"]
    ended = final["ended"]
    assert ended["reason"] == "client_shutdown" and final["closeCode"] == 1000
    assert ended["billed_seconds"] >= 3.0 and ended["dropped_ranges"] == [], ended  # at least the first lead-in window
    assert abs(ended["billed_seconds"] - sum(r["end"] - r["start"] for r in ended["analyzed_ranges"])) < 1e-3
    assert "session.ended" in final["endedText"]
    assert final["types"][-1] == "session.ended"
    assert "signal.detected" in final["types"] or live["signalRows"] > 0 or live["counts"].get("signal.detected")


def test_demo_is_off_when_disabled_and_mints_only_same_origin(fresh_server):
    import httpx

    on = fresh_server()
    page = httpx.get(f"http://{on.base}/", timeout=10)
    assert page.status_code == 200 and "new WebSocket(url, [\"access_token\", body.token])" in page.text
    assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text  # no CDN
    cross = httpx.post(f"http://{on.base}/v1/demo/token", headers={"Origin": "https://evil.example.com"}, timeout=10)
    assert cross.status_code == 400
    same = httpx.post(f"http://{on.base}/v1/demo/token", headers={"Origin": f"http://{on.base}"}, timeout=10).json()
    assert same["allowed_origins"] == [f"http://{on.base}"] and same["max_concurrent"] == 1
    minted = [httpx.post(f"http://{on.base}/v1/demo/token", headers={"Origin": f"http://{on.base}"}, timeout=10)
              for _ in range(8)]
    statuses = [r.status_code for r in minted]
    assert statuses[:5] == [200] * 5 and statuses[-1] == 429, statuses  # 6 a minute per address
    assert minted[-1].json()["error"]["code"] == "ih4029" and minted[-1].headers["retry-after"] == "60"
    off = fresh_server(demo=0)
    assert httpx.get(f"http://{off.base}/", timeout=10).status_code == 404
    assert httpx.post(f"http://{off.base}/v1/demo/token", headers={"Origin": f"http://{off.base}"},
                      timeout=10).status_code == 404
