"""The Dockerfile's steps without Docker: build the wheel, install it into a clean venv, migrate, serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT, free_port, wait_until_healthy


def test_the_built_wheel_installs_into_a_clean_venv_and_serves(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(REPO_ROOT)],
        check=True,
    )
    wheel = next(wheels.glob("facerec-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # This pip installs into the clean venv (--python), which needs no pip of its own; --no-compile: no bytecode
    # written ahead for the dependencies (what the server imports is compiled as it is imported).
    install = ["install", "--quiet", "--no-compile", str(wheel)]
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *install], check=True)

    workdir = tmp_path / "app"  # outside the repository: only what the wheel carries is available
    workdir.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FACEREC_DATABASE_URL": f"sqlite:///{workdir / 'facerec.db'}",
        "FACEREC_LOG_LEVEL": "WARNING",
    }
    facerec = str(venv / "bin" / "facerec")
    subprocess.run([facerec, "db", "upgrade"], cwd=workdir, env=env, check=True, capture_output=True)
    token = (
        subprocess.run(
            [facerec, "token", "create", "--domain", "docker.test", "--admin"],
            cwd=workdir,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    port = free_port()
    server = subprocess.Popen([facerec, "serve", "--port", str(port)], cwd=workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_until_healthy(url, server)
        assert health.json()["status"] == "healthy"
        assert httpx.get(f"{url}/api/auth/me", headers={"Authorization": token}).json()["domain"] == "docker.test"
        assert "<title>facerec</title>" in httpx.get(f"{url}/").text
        assert httpx.get(f"{url}/static/app.js").status_code == 200
        assert (workdir / "storage").is_dir()
    finally:
        server.terminate()
        server.wait(timeout=30)
