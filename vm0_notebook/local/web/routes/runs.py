"""``/v1/runs``: create (202), list, get, cancel."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from vm0_notebook.contract import ACTIVE_STATUSES, STATUSES, now_iso
from vm0_notebook.local.errors import ApiError, check_name, invalid, invalid_state, missing
from vm0_notebook.local.store.ids import new_id
from vm0_notebook.local.store.runs import run_json
from vm0_notebook.local.web.requests import field, json_body, page_args, parse_time
from vm0_notebook.local.web.responses import ok, page
from vm0_notebook.local.web.state import local_server

if TYPE_CHECKING:
    import sqlite3

    from starlette.requests import Request
    from starlette.responses import Response

    from vm0_notebook.local.web.state import LocalServer

MAX_PROMPT_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY = 255
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """``variables`` or ``secrets``: environment names to string values.

    Error messages name the offending key, never a value (a value may be a secret).
    """
    value = field(body, name, dict) or {}
    for key, item in value.items():
        if not ENV_NAME_RE.match(key) or key.startswith("VM0_"):
            raise invalid(f"'{name}' has an invalid name {key!r}: use letters, digits and _, "
                          "not starting with a digit or VM0_", name)
        if not isinstance(item, str) or "\0" in item:
            raise invalid(f"'{name}.{key}' must be a string without NUL characters", name)
    return value


def _prompt(body: dict[str, Any]) -> str:
    prompt = field(body, "prompt", str, required=True)
    if not prompt.strip():
        raise missing("prompt", "'prompt' must not be empty")
    if "\0" in prompt:  # no process argument can hold it: the run could only fail
        raise invalid("'prompt' must not contain NUL characters", "prompt")
    size = len(prompt.encode())
    if size > MAX_PROMPT_BYTES:
        raise invalid(f"'prompt' is {size} bytes; the limit is 1 MiB ({MAX_PROMPT_BYTES} bytes)",
                      "prompt")
    return prompt


def body_hash(body: dict[str, Any]) -> str:
    """The SHA-256 of the body's canonical JSON: key order and spacing do not count."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Plan:
    """What a new run is made of, resolved from the request body (every 400/404 is raised
    here, before anything is written)."""

    def __init__(self, server: LocalServer, body: dict[str, Any]) -> None:
        self.server = server
        self.prompt = _prompt(body)
        self.variables = env_map(body, "variables")
        self.secrets = env_map(body, "secrets")
        self.session: sqlite3.Row | None = None
        self.checkpoint: sqlite3.Row | None = None
        self.agent, inherited = self._agent(body)
        version_ref = field(body, "agent_version", str)
        # A checkpoint is a snapshot: by default it resumes with the agent version it was made
        # with. A session continues with the agent's current version.
        if version_ref is None and self.checkpoint is not None:
            version_ref = self.checkpoint["agent_version_id"]
        self.version = server.agents.version(self.agent, version_ref, "agent_version")
        # A continued session or a resumed checkpoint keeps its inputs and its artifact unless
        # the body names others.
        self.volumes = self._volumes(field(body, "volumes", dict),
                                     json.loads(inherited["volumes"]) if inherited else {})
        artifact_name = field(body, "artifact_name", str)
        if artifact_name is None and inherited is not None:
            artifact_name = inherited["artifact_name"]
        self.artifact_name, self.artifact_version = self._artifact(
            artifact_name, field(body, "artifact_version", str))

    def _agent(self, body: dict[str, Any]) -> tuple[sqlite3.Row, sqlite3.Row | None]:
        """The agent, and the session or checkpoint the run continues from (if any)."""
        agent_ref = field(body, "agent", str)
        if agent_ref:
            check_name(agent_ref, "agent")  # a name; an id goes in agent_id
        agent_id = field(body, "agent_id", str)
        session_id = field(body, "session_id", str)
        checkpoint_id = field(body, "checkpoint_id", str)
        if not (agent_ref or agent_id or session_id or checkpoint_id):
            raise missing("agent", "Must provide one of: agent, agent_id, session_id, or "
                          "checkpoint_id")
        if session_id and checkpoint_id:
            raise invalid("Give session_id or checkpoint_id, not both", "checkpoint_id")
        agents = self.server.agents
        if not (session_id or checkpoint_id):
            return (agents.find(agent_id, "agent_id") if agent_id
                    else agents.find(agent_ref, "agent")), None
        if session_id:
            self.session = origin = self.server.runs.session(session_id)
        else:
            self.checkpoint = origin = self.server.runs.checkpoint(checkpoint_id)
        what = "session" if session_id else "checkpoint"
        agent = agents.find(origin["agent_id"], f"{what}_id")
        for param, ref in (("agent", agent_ref), ("agent_id", agent_id)):
            if ref and ref not in (agent["id"], agent["name"]):
                raise invalid(f"'{param}' does not match the agent of the {what}", param)
        return agent, origin

    def _volumes(self, refs: dict[str, Any] | None, inherited: dict[str, str]) -> dict[str, str]:
        """``{name: version id}``: the requested ones, else those of the session/checkpoint."""
        resolved = {}
        for name, ref in (inherited if refs is None else refs).items():
            check_name(name, "volumes")
            if not isinstance(ref, str):
                raise invalid(f"'volumes.{name}' must be a version reference string",
                              f"volumes.{name}")
            resolved[name] = self.server.storage.resolve("volume", name, ref,
                                                         f"volumes.{name}")[1]
        return resolved

    def _artifact(self, name: str | None, ref: str | None) -> tuple[str | None, str | None]:
        """The artifact's name and the version that pre-fills ``artifact/`` (None: empty)."""
        if name is None:
            if ref:
                raise invalid("'artifact_version' needs 'artifact_name'", "artifact_version")
            return None, None
        check_name(name, "artifact_name")
        storage = self.server.storage
        if ref and ref != "latest":
            return name, storage.resolve("artifact", name, ref, "artifact_version")[1]
        try:  # the latest version pre-fills the folder; a new artifact starts empty
            return name, storage.resolve("artifact", name, "latest", "artifact_version")[1]
        except ApiError:
            return name, None

    def rows(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The run row and, unless it continues a session, its new session row."""
        now, volumes = now_iso(), json.dumps(self.volumes, sort_keys=True)
        session = None
        if self.session is not None:
            session_id = self.session["id"]
        else:
            session_id = new_id("ses")
            session = {
                "id": session_id, "agent_id": self.agent["id"],
                "source_checkpoint_id": self.checkpoint["id"] if self.checkpoint else None,
                "artifact_name": self.artifact_name, "volumes": volumes, "created_at": now,
            }
        run = {
            "id": new_id("run"), "agent_id": self.agent["id"], "agent_name": self.agent["name"],
            "agent_version_id": self.version["id"], "status": "pending", "prompt": self.prompt,
            "created_at": now, "session_id": session_id,
            "resumed_from": self.checkpoint["id"] if self.checkpoint else None,
            "artifact_name": self.artifact_name, "artifact_version": self.artifact_version,
            "volumes": volumes, "variables": json.dumps(self.variables),
        }
        return run, session


async def create_run(request: Request) -> Response:
    """``POST /v1/runs``: queue a run of an agent."""
    server = local_server(request)
    key = request.headers.get("idempotency-key")
    body = await json_body(request)
    idempotency = None
    if key is not None:
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise invalid(f"'Idempotency-Key' must be 1-{MAX_IDEMPOTENCY_KEY} characters",
                          "Idempotency-Key")
        idempotency = (key, body_hash(body))
        existing = server.runs.by_idempotency_key(*idempotency)
        if existing is not None:
            return ok(run_json(existing), 202)
    plan = _Plan(server, body)
    if server.stopping:  # checked with no await before submit: nothing is left half-made
        raise ApiError("api_error", "internal_error",
                       "The local server is shutting down; start it again and retry")
    run, session = plan.rows()
    row = server.runs.insert(run, session, idempotency)
    if row["id"] == run["id"]:
        if plan.secrets:
            server.host.secrets[row["id"]] = plan.secrets
        server.runner.submit(row["id"])
    return ok(run_json(row), 202)


async def list_runs(request: Request) -> Response:
    """``GET /v1/runs``: runs, newest first, one page."""
    limit, cursor = page_args(request, shape=(int,))
    query = request.query_params
    status = query.get("status")
    if status and status not in STATUSES:
        raise invalid(f"'status' must be one of: {', '.join(STATUSES)}", "status")
    since = query.get("since")
    rows = local_server(request).runs.list(
        status=status or None, agent_id=query.get("agent_id") or None,
        since=parse_time(since, "since") if since else None,
        after=cursor and cursor[0], limit=limit + 1,
    )
    return ok(page(rows, limit, run_json, lambda r: (r["seq"],)))


async def get_run(request: Request) -> Response:
    """``GET /v1/runs/{id}``: one run's detail."""
    return ok(run_json(local_server(request).runs.get(request.path_params["run_id"])))


async def cancel_run(request: Request) -> Response:
    """``POST /v1/runs/{id}/cancel``: cancel a pending or running run."""
    server = local_server(request)
    run_id = request.path_params["run_id"]
    row = server.runs.get(run_id)
    if row["status"] in ACTIVE_STATUSES:
        if (not await server.runner.cancel(run_id)
                and server.runs.get(run_id)["status"] in ACTIVE_STATUSES):
            # Unknown to the runner: nothing is running it, so end it here.
            await server.host.finish(run_id, "cancelled", "Run cancelled", None)
        row = server.runs.get(run_id)
        if row["status"] == "cancelled":
            return ok(run_json(row))
    # Final already, or it ended on its own while being cancelled.
    raise invalid_state(f"Run cannot be cancelled: current status is '{row['status']}'")


ROUTES = [
    Route("/v1/runs", list_runs, methods=["GET"]),
    Route("/v1/runs", create_run, methods=["POST"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
]
