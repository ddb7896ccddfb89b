"""``client.agents``: list, get, create, update, delete an agent, and list its versions."""

from __future__ import annotations

from typing import Any

from .._ops import Op, Request, endpoint
from .._validate import check_name, invalid
from ..models import Agent, AgentVersion
from ..pagination import Pager
from ._resource import Resource


class Agents(Resource):
    """Agents: a name and a config (on the local server, the command to run).

        client.agents.list().to_pandas()
        client.agents.create("hello", {"command": ["{python}", "-c", "print('hi')"]})
    """

    segment = "agents"

    def list(self, name: str | None = None, limit: int | None = None) -> Pager[Agent]:
        """All agents (or the one named ``name``), fetched lazily page by page."""
        return self._client.pager(
            Request("GET", "/agents", params={"name": name}),
            Agent.from_api,
            Agent,
            keep=(lambda a: a.name == name) if name else None,
            limit=limit,
        )

    @endpoint
    def get(self, id_or_name: str) -> Op[Agent]:
        """One agent with its config and current version, by id or by name."""
        return Agent.from_api((yield from self._find_op(id_or_name)))

    @endpoint
    def create(
        self, name: str, config: dict[str, Any], description: str | None = None
    ) -> Op[Agent]:
        """Create an agent; a name that exists already raises :class:`ConflictError`."""
        check_name(name)
        body: dict[str, Any] = {"name": name, "config": _check_config(config)}
        if description is not None:
            body["description"] = description
        return Agent.from_api((yield Request("POST", "/agents", json=body)))

    @endpoint
    def update(self, id: str, config: dict[str, Any]) -> Op[Agent]:
        """Replace an agent's config (a new version when it changed); ``id`` may be a name."""
        agent = Agent.from_api((yield from self._find_op(id)))
        data = yield Request("PUT", self._path(agent.id), json={"config": _check_config(config)})
        return Agent.from_api(data)

    @endpoint
    def delete(self, id: str) -> Op[None]:
        """Delete an agent (by id or name)."""
        agent = Agent.from_api((yield from self._find_op(id)))
        yield Request("DELETE", self._path(agent.id))

    def versions(self, id: str, limit: int | None = None) -> Pager[AgentVersion]:
        """An agent's versions, newest first (by id; on the local server also by name)."""
        return self._client.pager(
            Request("GET", self._path(id, "versions")), AgentVersion.from_api, AgentVersion,
            limit=limit,
        )


def _check_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise invalid("'config' must be an object", "config")
    return config
