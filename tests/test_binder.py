"""binder/ works: the package installed the way ``binder/postBuild`` says into a fresh virtual
environment, and the quickstart executed there in a kernel of that environment, with the
environment ``binder/start`` gives Binder's processes (agents unsandboxed, and saying so).

pip uses the machine's own package index when it has one (``/opt/pypi/simple``), so the test
runs offline where that index exists. npm is kept off postBuild's PATH: installing the Claude
Code CLI is the business of the Claude Code tests, and without it the claude cells skip anyway
(no model is configured here). ipykernel is installed beside the package, standing in for the
Jupyter that Binder's image brings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.test_notebooks import ROOT, execute

pytestmark = [pytest.mark.slow, pytest.mark.notebook, pytest.mark.timeout(900)]
LOCAL_INDEX = Path("/opt/pypi/simple")


def _pip_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VM0_", "ANTHROPIC_"))}
    env["PATH"] = str(venv / "bin")  # python and pip of the new environment; no npm
    env["PIP_NO_COMPILE"] = "1"  # no .pyc files: the install is half as long
    if LOCAL_INDEX.is_dir():
        env["PIP_INDEX_URL"] = env["PIP_EXTRA_INDEX_URL"] = LOCAL_INDEX.as_uri()
    return env


def _start_env(base: dict[str, str]) -> dict[str, str]:
    """The environment ``binder/start`` hands to the command it starts."""
    done = subprocess.run(["/bin/bash", str(ROOT / "binder" / "start"), "/usr/bin/env", "-0"],
                          env=base, capture_output=True, check=True, timeout=30)
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def test_the_quickstart_runs_where_binder_installed_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # outside pytest's private tmp folder: as root, process mode runs each agent as a uid of
    # its own, which must be able to read the environment's Python, as on Binder
    home = Path(tempfile.mkdtemp(prefix="vm0-binder-"))
    home.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = _pip_env(venv)
    build = subprocess.run(["/bin/bash", str(ROOT / "binder" / "postBuild")], cwd=ROOT, env=pip,
                           capture_output=True, text=True, timeout=600)
    if build.returncode != 0 and "No matching distribution" in build.stderr + build.stdout:
        pytest.skip("pip cannot reach a package index from here: " + build.stderr[-300:])
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert "vm0-notebook" in build.stdout
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "ipykernel"], env=pip,
                   check=True, timeout=600)
    # the package in the new environment, not the checkout: a wheel was installed
    found = subprocess.run([str(python), "-c", "import vm0_notebook; print(vm0_notebook.__file__)"],
                           env=pip, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert found.stdout.startswith(str(venv))

    # a kernel of the new environment, found through a kernelspec of its own
    spec = tmp_path / "jupyter" / "kernels" / "binder"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "binder", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    notebook = ROOT / "notebooks" / "01-quickstart.ipynb"
    with execute.fresh_server(tmp_path / "data") as data_dir:
        base = {k: v for k, v in pip.items() if not k.startswith("PIP_")}
        base["PATH"] = f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        env = execute.kernel_env(data_dir, _start_env(base))
        assert env["VM0_LOCAL_SANDBOX"] == "process"
        nb, failed = execute.execute(notebook, execute.working_copy(tmp_path / "out"), env,
                                     300, kernel_name="binder")
        from vm0_notebook.local import daemon

        state = daemon.read_state(data_dir / "server")
        assert state is not None
        server_python = os.path.realpath(f"/proc/{state['pid']}/exe")
    assert failed is None, str(failed).strip().splitlines()[-1]
    assert server_python == os.path.realpath(python)  # the server of the new environment
    config = next(c for c in nb.cells if c.source.strip() == "%vm0 config")
    assert "sandbox process" in execute.text_of(config.outputs[0])
    assert importlib.util.find_spec("vm0_notebook") is not None
