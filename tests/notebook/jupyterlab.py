"""A real JupyterLab server for the browser tests, in its own temporary home.

    lab = start_lab(root_dir, env={"VM0_API_URL": ..., "VM0_API_KEY": ...})
    lab.url_of("01-quickstart.ipynb")       # open it in a browser
    lab.stop()

Its config, settings, workspaces, runtime and IPython folders are all under ``root_dir``'s
parent, so a test never reads or changes the user's Jupyter set-up; the news and update
notifications are off, so no toast covers the notebook.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@dataclass
class Lab:
    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def url_of(self, notebook: str, workspace: str | None = None) -> str:
        """The address that opens ``notebook`` (relative to the root folder) in JupyterLab;
        in a workspace of its own if ``workspace`` is named, so no other tab is open."""
        where = f"/lab/workspaces/{workspace}" if workspace else "/lab"
        return f"{self.url}{where}/tree/{notebook}?token={self.token}"

    def stop(self) -> None:
        """Stop the server and its kernels."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quiet_settings(settings_dir: Path) -> None:
    path = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def start_lab(root_dir: Path, env: dict[str, str], timeout: float = 60) -> Lab:
    """Start ``jupyter lab`` serving ``root_dir``; kernels get ``env`` on top of a clean one."""
    home = root_dir.parent
    token = secrets.token_hex(16)
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VM0_", "JUPYTER"))}
    full_env.update(
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    full_env.update(env)
    _quiet_settings(home / "lab-settings")
    log = home / "jupyterlab.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
         "--ServerApp.terminals_enabled=False", "--allow-root",  # CI containers run as root
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=full_env, cwd=root_dir,
    )
    lab = Lab(f"http://127.0.0.1:{port}", token, root_dir, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            status = httpx.get(f"{lab.url}/api/status", params={"token": token}, timeout=2)
            if status.status_code == 200:
                return lab
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    lab.stop()
    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
