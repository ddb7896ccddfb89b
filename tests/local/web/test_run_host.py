"""The run host over real HTTP: volumes and artifacts in the working folder, sessions,
checkpoints, and secrets that never leave the agent's process."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path


def artifact_name() -> str:
    return f"art-{secrets.token_hex(4)}"


def test_volumes_are_materialised_and_named_in_the_logs(api):
    volume = api.volume({"hello.txt": b"hello volume", "sub/deep.txt": b"deep"})
    current = api.http.get(f"/volumes/{volume}").json()["current_version_id"]
    done = api.run("shell", f"cat volumes/{volume}/hello.txt; echo; cat volumes/{volume}/sub/"
                   "deep.txt", volumes={volume: current[:10]})
    assert done.status == "completed", done.detail
    assert done.texts == ["hello volume", "deep"]
    assert done.detail["volumes"] == {volume: current}
    assert any(current[:12] in e["message"] and volume in e["message"] for e in done.logs)


def test_artifact_folder_becomes_a_new_version_and_prefills_the_next_run(api):
    name = artifact_name()
    first = api.run("shell", "echo result-1 > artifact/out.txt", artifact_name=name)
    assert first.status == "completed", first.detail
    artifact = api.http.get(f"/artifacts/{name}").json()
    assert first.detail["artifact_name"] == name
    assert first.detail["artifact_version"] == artifact["current_version_id"]
    assert artifact["file_count"] == 1

    second = api.run("shell", "cat artifact/out.txt; echo more > artifact/more.txt",
                     artifact_name=name)
    assert second.texts == ["result-1"]
    versions = api.http.get(f"/artifacts/{name}/versions").json()["data"]
    assert [v["id"] for v in versions] == [second.detail["artifact_version"],
                                          first.detail["artifact_version"]]
    assert versions[0]["created_by"] == second.detail["id"]

    pinned = api.run("shell", "ls artifact", artifact_name=name,
                     artifact_version=first.detail["artifact_version"][:8])
    assert pinned.texts == ["out.txt"]
    # Unchanged files make no new version.
    assert pinned.detail["artifact_version"] == first.detail["artifact_version"]


def test_a_session_keeps_its_files_and_runs_one_at_a_time(api):
    first = api.run("shell", "echo kept > notes.txt")
    session = first.detail["session_id"]
    follow = api.start("shell", "cat notes.txt; echo ready; while [ ! -e go ]; do sleep 0.05; "
                       "done", session_id=session)
    api.frames(follow, until="ready")
    busy = api.http.post("/runs", json={"session_id": session, "prompt": "echo x"})
    assert busy.status_code == 400
    assert busy.json()["error"]["code"] == "invalid_state"
    assert busy.json()["error"]["param"] == "session_id"
    message = busy.json()["error"]["message"]
    assert follow in message and "running" in message
    assert "Wait for it to end or cancel it" in message and "new session" in message
    workdir = Path(api.server.data_dir) / "sessions" / session
    (workdir / "go").write_text("")
    done = api.finish(follow)
    assert done.detail["session_id"] == session
    assert done.texts[0] == "kept"
    assert done.detail["agent_name"] == "shell"


def test_a_continued_session_keeps_its_volumes_and_artifact(api):
    volume = api.volume({"in.txt": b"input"})
    name = artifact_name()
    first = api.run("shell", "echo 1 > artifact/a.txt", volumes={volume: "latest"},
                    artifact_name=name)
    second = api.run("shell", f"cat volumes/{volume}/in.txt; echo 2 > artifact/b.txt",
                     session_id=first.detail["session_id"])
    assert second.texts == ["input"]
    assert second.detail["volumes"] == first.detail["volumes"]
    assert second.detail["artifact_name"] == name
    download = api.http.get(f"/artifacts/{name}/download").json()
    assert download["version_id"] == second.detail["artifact_version"]
    assert sorted(f["path"] for f in download["files"]) == ["a.txt", "b.txt"]
    # Naming other volumes replaces the inherited ones.
    third = api.run("shell", "ls volumes", session_id=first.detail["session_id"], volumes={})
    assert third.texts == [] and third.detail["volumes"] == {}


def test_resume_from_a_checkpoint_starts_a_new_session_from_its_snapshot(api):
    first = api.run("shell", "echo v1 > state.txt")
    checkpoint = first.detail["checkpoint_id"]
    later = api.run("shell", "echo v2 > state.txt", session_id=first.detail["session_id"])
    assert later.detail["checkpoint_id"] != checkpoint
    resumed = api.run("shell", "cat state.txt", checkpoint_id=checkpoint)
    assert resumed.texts == ["v1"]
    assert resumed.detail["session_id"] != first.detail["session_id"]
    mismatch = api.http.post("/runs", json={"checkpoint_id": checkpoint, "agent": "echo",
                                            "prompt": "x"})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["param"] == "agent"
    both = api.http.post("/runs", json={"checkpoint_id": checkpoint, "prompt": "x",
                                        "session_id": first.detail["session_id"]})
    assert both.status_code == 400


def test_a_secret_never_leaves_the_agent(api, local_server):
    secret = "s3cr3t-" + secrets.token_hex(12)
    name = artifact_name()
    script = ('echo "the key is $API_TOKEN"; echo "stderr $API_TOKEN" >&2; '
              'printf \'{"type":"assistant","message":{"content":[{"type":"text","text":"%s"}]}}'
              '\\n\' "$API_TOKEN"; printf %s "$API_TOKEN" | sha256sum')
    done = api.run("shell", script, secrets={"API_TOKEN": secret}, artifact_name=name,
                   variables={"PLAIN": "visible"})
    assert done.status == "completed", done.detail
    assert "the key is ***" in done.texts
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert any(t.startswith(digest) for t in done.texts)  # the agent did get the real value
    served = [done.everything(), str(api.metrics(done.detail["id"])),
              api.http.get("/runs", params={"limit": 100}).text,
              api.http.get(f"/runs/{done.detail['id']}/logs", params={"limit": 100}).text,
              str(api.frames(done.detail["id"]))]
    for text in served:
        assert secret not in text
    failing = api.run("shell", 'echo "$API_TOKEN" >&2; exit 1', secrets={"API_TOKEN": secret})
    assert failing.status == "failed" and secret not in failing.everything()
    assert "***" in failing.detail["error"]
    # Nothing on disk either: the database, its WAL, the blobs, the server's own log.
    for path in Path(local_server.data_dir).rglob("*"):
        if path.is_file() and path.name not in ("vm0.db-shm",):
            assert secret.encode() not in path.read_bytes(), path
