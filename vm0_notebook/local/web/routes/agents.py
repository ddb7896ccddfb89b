"""``/v1/agents``: list, create, get, update, delete, versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from vm0_notebook.local.errors import check_name, invalid
from vm0_notebook.local.runtime.frameworks import check_framework
from vm0_notebook.local.runtime.spec import ConfigProblem
from vm0_notebook.local.store.agents import agent_json, version_json
from vm0_notebook.local.web.requests import field, json_body, page_args
from vm0_notebook.local.web.responses import no_content, ok, page
from vm0_notebook.local.web.state import local_server

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from vm0_notebook.local.store.agents import AgentStore


def _agents(request: Request) -> AgentStore:
    return local_server(request).agents


def _config(body: dict[str, Any]) -> dict[str, Any]:
    """The body's ``config``, checked by the framework it names (if any)."""
    config = field(body, "config", dict, required=True)
    try:
        check_framework(config)
    except ConfigProblem as exc:
        raise invalid(str(exc), exc.param) from None
    return config


async def list_agents(request: Request) -> Response:
    """``GET /v1/agents``: agents in the order they were made (or by ``?name=``), one page."""
    limit, cursor = page_args(request, shape=(int,))
    name = request.query_params.get("name")
    if name:
        check_name(name)
    rows = _agents(request).list(name=name, after=cursor and cursor[0], limit=limit + 1)
    return ok(page(rows, limit, agent_json, lambda r: (r["seq"],)))


async def create_agent(request: Request) -> Response:
    """``POST /v1/agents``: a new agent and its first version."""
    body = await json_body(request)
    store = _agents(request)
    row = store.create(
        field(body, "name", str, required=True),
        _config(body),
        field(body, "description", str),
    )
    return ok(store.detail(row), 201)


async def get_agent(request: Request) -> Response:
    """``GET /v1/agents/{id}``: one agent (by id or name)."""
    store = _agents(request)
    return ok(store.detail(store.find(request.path_params["agent_id"])))


async def update_agent(request: Request) -> Response:
    """``PUT /v1/agents/{id}``: a new version of the agent's config."""
    body = await json_body(request)
    store = _agents(request)
    row = store.find(request.path_params["agent_id"])
    row = store.update(
        row,
        _config(body),
        field(body, "description", str),
        field(body, "message", str),
    )
    return ok(store.detail(row))


async def delete_agent(request: Request) -> Response:
    """``DELETE /v1/agents/{id}``."""
    store = _agents(request)
    store.delete(store.find(request.path_params["agent_id"]))
    return no_content()


async def list_versions(request: Request) -> Response:
    """``GET /v1/agents/{id}/versions``: the agent's config versions, one page."""
    limit, cursor = page_args(request, shape=(int,))
    store = _agents(request)
    agent = store.find(request.path_params["agent_id"])
    rows = store.versions(agent["id"], after=cursor and cursor[0], limit=limit + 1)
    return ok(page(rows, limit, version_json, lambda r: (r["version_number"],)))


ROUTES = [
    Route("/v1/agents", list_agents, methods=["GET"]),
    Route("/v1/agents", create_agent, methods=["POST"]),
    Route("/v1/agents/{agent_id}", get_agent, methods=["GET"]),
    Route("/v1/agents/{agent_id}", update_agent, methods=["PUT"]),
    Route("/v1/agents/{agent_id}", delete_agent, methods=["DELETE"]),
    Route("/v1/agents/{agent_id}/versions", list_versions, methods=["GET"]),
]
