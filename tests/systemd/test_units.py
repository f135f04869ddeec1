"""The systemd units: verified by systemd-analyze and checked for what the roles rely on."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / name)
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_verify(tmp_path):
    exe = Path(sys.executable).with_name("inter1srv")
    for unit in UNITS.iterdir():
        if unit.suffix in (".service", ".target"):
            (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/inter1srv/.venv/bin/inter1srv", str(exe)))
    names = ["inter1srv.target", "inter1srv-sequencer.service", "inter1srv-frontend.service",
             "inter1srv-worker@0.service", "inter1srv-single.service"]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path,
                            capture_output=True, text=True, env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_roles_are_notify_units_with_watchdogs_and_drain_budget():
    for name in ("inter1srv-sequencer.service", "inter1srv-frontend.service", "inter1srv-worker@.service"):
        service = _unit(name)["Service"]
        assert service["Type"] == "notify"
        assert int(service["WatchdogSec"]) > 0
        assert service["User"] == "inter1srv"
        assert service["RemoveIPC"] == "no"
        assert "PrivateDevices" not in service  # GPUs need /dev/nvidia*
    frontend = _unit("inter1srv-frontend.service")["Service"]
    assert int(frontend["TimeoutStopSec"]) > 60, "stop must outlast the default 60 s drain"
    worker = _unit("inter1srv-worker@.service")["Service"]
    assert "CUDA_VISIBLE_DEVICES=%i" in worker["Environment"]
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in worker["Environment"]  # %i as nvidia-smi numbers the GPUs
    assert "worker --id gpu%i" in worker["ExecStart"]
