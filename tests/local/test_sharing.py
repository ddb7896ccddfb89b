"""``vm0-local serve --host`` beyond loopback (a shared server for a class): it needs a token
its operator chose, says what it exposes, and knows the names it answers to."""

from __future__ import annotations

import argparse
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from vm0_notebook.local.sharing import allowed_hosts, is_loopback, serve_token

URL_RE = re.compile(r"http://[^\s]+")


def serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "vm0_notebook.local", "serve", "--port", "0", *args]


def refused(*args: str) -> str:
    """``serve *args`` exits 2 at once; its stderr."""
    done = subprocess.run(serve(*args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    return done.stderr


def token_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_host_beyond_loopback_needs_a_token_of_its_operator(tmp_path: Path) -> None:
    data = tmp_path / "d"
    err = refused("--host", "0.0.0.0", "--data-dir", str(data))
    assert "--host 0.0.0.0 makes this server reachable from other machines" in err
    assert "--token-file" in err and "\n" not in err.strip()
    assert not (data / "server.json").exists()
    short = token_file(tmp_path / "short", "abc\n")
    assert "at least 16 characters" in refused("--host", "0.0.0.0", "--token-file", str(short),
                                               "--data-dir", str(data))
    assert "at least 16" in refused("--host", "0.0.0.0", "--token", "abc", "--data-dir", str(data))
    empty = token_file(tmp_path / "empty", "\n")
    assert f"the token file {empty} is empty" in refused("--host", "0.0.0.0", "--token-file",
                                                         str(empty), "--data-dir", str(data))
    missing = tmp_path / "missing"
    assert f"cannot read the token file {missing}" in refused(
        "--host", "0.0.0.0", "--token-file", str(missing), "--data-dir", str(data))
    good = token_file(tmp_path / "good", "t" * 20)
    assert "not both" in refused("--host", "0.0.0.0", "--token-file", str(good), "--token",
                                 "t" * 20, "--data-dir", str(data))


def test_a_shared_server_says_what_it_exposes_and_takes_only_its_token(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    path = token_file(tmp_path / "token", token + "\n", mode=0o644)
    data = tmp_path / "d"
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            serve("--host", "0.0.0.0", "--token-file", str(path), "--data-dir", str(data),
                  "--allow-host", "class.example.org"),
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = URL_RE.search(line)
        assert match, (line, log.read_text())
        port = match.group(0).rstrip("/").rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/agents").status_code == 401
        assert httpx.get(f"{url}/v1/agents", headers={"Authorization": "Bearer wrong"}
                         ).status_code == 401
        ok = httpx.get(f"{url}/v1/agents", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        # behind a TLS proxy on this machine (README), signed URLs name the proxy's address
        auth = {"Authorization": f"Bearer {token}"}
        proxied = {**auth, "Host": "class.example.org", "X-Forwarded-Proto": "https"}
        volume = httpx.post(f"{url}/v1/volumes", json={"name": "shared"}, headers=auth).json()
        upload = httpx.post(f"{url}/v1/volumes/{volume['id']}/upload", headers=proxied,
                            json={"files": [{"path": "a.txt", "size": 1}]})
        assert upload.status_code == 200, upload.text
        assert upload.json()["files"][0]["upload_url"].startswith(
            "https://class.example.org/storage/uploads/")
        text = log.read_text()
        assert f"is open to other users: chmod 600 {path}" in text
        assert f"http://0.0.0.0:{port} is reachable from other machines" in text
        for needle in ("run agents as commands on this machine", str(data), "plain HTTP",
                       "TLS reverse proxy", "--allow-host"):
            assert needle in text
        assert token not in text and token not in line
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.10", False),
    ("class.example.org", False),
])
def test_which_hosts_stay_on_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_keeps_a_random_token_by_default() -> None:
    args = argparse.Namespace(host="127.0.0.1", token=None, token_file=None)
    token, warnings = serve_token(args)
    assert token.startswith("vm0_local_") and len(token) > 30 and warnings == []
    assert serve_token(args)[0] != token


def test_the_names_a_server_answers_to() -> None:
    assert allowed_hosts("0.0.0.0", ["class.example.org"]) == ["class.example.org"]
    assert allowed_hosts("::", []) == []
    assert allowed_hosts("10.0.0.5", ["a.example", ""]) == ["10.0.0.5", "a.example"]


def test_the_app_knows_the_names_it_answers_to(tmp_path: Path) -> None:
    from vm0_notebook.local.web.app import create_app

    shared = create_app(tmp_path / "d", "t" * 20,
                        allowed_hosts=["Class.Example.org", "10.0.0.5"]).state.local
    plain = create_app(tmp_path / "e", "t" * 20).state.local
    try:
        assert shared.allowed_hosts == frozenset({"class.example.org", "10.0.0.5"})
        assert plain.allowed_hosts == frozenset()
    finally:
        shared.db.close()
        plain.db.close()
