"""What ``facerec serve`` writes: every line, uvicorn's own included, in the service's one log format."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port, wait_until_healthy

# LOG_FORMAT: "%(asctime)s %(levelname)s %(name)s: %(message)s"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S")


def test_every_line_the_server_writes_has_the_service_log_format(facerec_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env={**facerec_env, "FACEREC_LOG_LEVEL": "INFO"},
            stdout=stdout,
            stderr=stderr,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            assert wait_until_healthy(url, process).status_code == 200
            assert httpx.get(f"{url}/api/auth/me", timeout=10).status_code == 401
        finally:
            process.terminate()
            process.wait(timeout=60)
    errors, access = err.read_text().splitlines(), out.read_text().splitlines()
    assert any("uvicorn.error: Application startup complete." in line for line in errors), errors
    request = re.compile(r'uvicorn\.access: 127\.0\.0\.1:\d+ - "GET /api/auth/me HTTP/1\.1" 401 Unauthorized$')
    assert any(request.search(line) for line in access), access
    assert [line for line in errors + access if not LINE.match(line)] == []
