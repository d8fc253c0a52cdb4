"""conf/maa-server.service is accepted by `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[3] / "conf" / "maa-server.service"


def test_unit_shape() -> None:
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert " -F" in text.split("ExecStart=")[1].splitlines()[0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this environment's script.
    script = Path(sys.executable).with_name("maa-server")
    if not script.exists():
        pytest.skip("maa-server script not installed next to the interpreter")
    unit = tmp_path / "maa-server.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/maa-server", str(script)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    problems = [line for line in result.stderr.splitlines() if str(unit) in line or "maa-server" in line]
    assert result.returncode == 0 and not problems, result.stderr


def service_settings() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_hardening_allows_the_privilege_drop_and_sendmail() -> None:
    """Started as root (no User=); may switch to any mail user's uid/gid;
    may exec Postfix's setgid postdrop through sendmail (no NoNewPrivileges);
    can reach mail under /home; talks sd_notify from the main process."""
    service = service_settings()
    assert "User" not in service and "Group" not in service
    capabilities = " ".join(service["CapabilityBoundingSet"]).split()
    for needed in ("CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_DAC_OVERRIDE"):
        assert needed in capabilities
    assert service.get("NoNewPrivileges", ["no"]) == ["no"]
    assert service.get("ProtectHome", ["no"]) == ["no"]
    assert service.get("RestrictSUIDSGID") in (None, ["yes"])  # creating suid files, not running them
    assert service["NotifyAccess"] == ["main"] and service["KillMode"] == ["mixed"]
    assert "AF_UNIX" in service["RestrictAddressFamilies"][0]  # /dev/log, sd_notify, LMTP sockets
