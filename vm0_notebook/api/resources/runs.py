"""``client.runs``: start, find, list and cancel runs; their events, logs and metrics."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from .. import _run_secrets
from .. import events as _events
from .._ops import Op, Request, endpoint
from .._parse import parse_time, plain_id
from .._validate import check_name, check_prompt, invalid, str_map
from ..errors import NotFoundError
from ..models import Event, LogEntry, RunDetail, RunMetrics
from ..pagination import Pager, split_page
from ..run import Run
from ._resource import Resource

_STARTS = ("agent", "agent_id", "session_id", "checkpoint_id")


class Runs(Resource):
    """Runs of agents.

        run = client.runs.create(agent="echo", prompt="hello", variables={"N": "3"})
        for event in client.runs.events(run.id):
            ...
        client.runs.list(status="failed").to_pandas()
    """

    segment = "runs"

    def _create_op(
        self,
        prompt: str | None,
        agent: str | None = None,
        *,
        agent_id: str | None = None,
        agent_version: str | None = None,
        session_id: str | None = None,
        checkpoint_id: str | None = None,
        variables: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        volumes: Mapping[str, str] | Iterable[str] | None = None,
        artifact_name: str | None = None,
        artifact_version: str | None = None,
        idempotency_key: str | None = None,
    ) -> Op[Run]:
        body = run_body(
            prompt, agent=agent, agent_id=agent_id, agent_version=agent_version,
            session_id=session_id, checkpoint_id=checkpoint_id, variables=variables,
            secrets=secrets, volumes=volumes, artifact_name=artifact_name,
            artifact_version=artifact_version,
        )
        # the same key on every retry, so a retry never starts a second run
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        try:
            data = yield Request("POST", "/runs", json=body, headers=headers, retry=True)
        except NotFoundError as exc:
            if not agent or exc.param not in (None, "agent") or "agent" not in exc.message.lower():
                raise
            better = yield from self._client.agents._not_found_op(agent)
            better.request_id, better.param = exc.request_id, exc.param
            raise better from None
        run = self._client.run(data)
        _run_secrets.remember(run.id, secrets)
        return run

    @endpoint
    def create(self, agent: str | None = None, prompt: str | None = None, **options: Any
               ) -> Op[Run]:
        """Start a run and return it at once (status ``pending``); ``run.wait()`` to finish.

        Give ``prompt`` and one of ``agent`` (a name), ``agent_id``, ``session_id`` (continue a
        session) or ``checkpoint_id`` (resume a checkpoint). Options: ``agent_version``
        (``latest``, a version id or ``v3``), ``variables``/``secrets`` (``{name: value}``;
        secrets are write-only), ``volumes`` (``{name: version}`` or ``["name", "name@ver"]``),
        ``artifact_name``, ``artifact_version``, ``idempotency_key``.

            run = client.runs.create(agent="python", prompt="print(6 * 7)")
        """
        return (yield from self._create_op(prompt, agent, **options))

    @endpoint
    def get(self, id: str) -> Op[Run]:
        """The run's current detail."""
        return self._client.run((yield Request("GET", self._path(id))))

    def list(
        self,
        status: str | None = None,
        agent_id: str | None = None,
        since: str | datetime | None = None,
        limit: int | None = None,
    ) -> Pager[Run]:
        """Runs, newest first, lazily paged; ``limit`` caps how many are fetched in all.

        The filters are applied again here, for servers that ignore some of them.

            client.runs.list(status="completed", since="2024-01-01T00:00:00Z").to_pandas()
        """
        after = parse_time(since) if since is not None else None
        if since is not None and after is None:
            raise invalid(f"Invalid 'since' {since!r}: use an ISO-8601 timestamp", "since")
        params = {"status": status, "agent_id": agent_id, "since": after}
        return self._client.pager(
            Request("GET", "/runs", params=params),
            self._client.run,
            Run,
            keep=_run_filter(status, agent_id, after),
            limit=limit,
        )

    @endpoint
    def cancel(self, id: str) -> Op[Run]:
        """Cancel a pending or running run; 400 ``invalid_state`` for a finished one."""
        run = Run(RunDetail(id=id), self._client)
        return (yield from run._cancel_op())

    def events(self, id: str, last_event_id: int | None = None, **options: Any) -> Iterator[Event]:
        """The run's events, live, until ``complete``: resumes by itself, drops duplicates.

        Starts after output sequence ``last_event_id`` when given. On an ``AsyncClient`` this
        is an async iterator.

            for event in client.runs.events(run_id):
                if event.event == "output":
                    print(event.sequence, event.type)
        """
        return _events.stream(self._client, id, last_event_id, **options)

    def logs(
        self,
        id: str,
        type: str | None = None,
        level: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        order: str = "asc",
        limit: int | None = None,
    ) -> Pager[LogEntry]:
        """The run's log entries, lazily paged (``type``: agent/system/network/all)."""
        if order not in ("asc", "desc"):
            raise invalid("'order' must be 'asc' or 'desc'", "order")
        params = {"type": type, "level": level, "since": since, "until": until, "order": order}
        return self._client.pager(
            Request("GET", self._path(id, "logs"), params=params), LogEntry.from_api, LogEntry,
            limit=limit,
        )

    @endpoint
    def metrics(self, id: str) -> Op[RunMetrics]:
        """The run's resource summary and samples (every page of samples)."""
        params: dict[str, Any] = {"limit": 100}
        first: dict[str, Any] | None = None
        points: list[Any] = []
        while True:
            data = yield Request("GET", self._path(id, "metrics"), params=params)
            first = first or (data if isinstance(data, dict) else {})
            items, cursor = split_page(data) if isinstance(data, dict) and "data" in data \
                else ([], None)
            points += items
            if not cursor:
                break
            params["cursor"] = cursor
        return RunMetrics.from_api({**first, "data": points})


def run_body(prompt: str | None, **fields: Any) -> dict[str, Any]:
    """The JSON body of ``POST /runs``, checked as the server would check it."""
    check_prompt(prompt)
    if not any(fields.get(k) for k in _STARTS):
        raise invalid(
            "Must provide one of: agent, agent_id, session_id, or checkpoint_id",
            "agent", "missing_parameter",
        )
    if fields.get("agent"):
        check_name(fields["agent"], "agent")
    version = fields.get("agent_version")
    if version is not None and not isinstance(version, str):
        raise invalid("'agent_version' must be a string", "agent_version")
    if fields.get("artifact_name"):
        check_name(fields["artifact_name"], "artifact_name")
    body: dict[str, Any] = {"prompt": prompt}
    body["variables"] = str_map(fields.pop("variables", None), "variables")
    body["secrets"] = str_map(fields.pop("secrets", None), "secrets")
    body["volumes"] = volume_map(fields.pop("volumes", None))
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def volume_map(volumes: Mapping[str, str] | Iterable[str] | str | None) -> dict[str, str] | None:
    """``{name: version}`` from a mapping, or from names such as ``"data"``/``"data@ab12cd34"``."""
    if volumes is None:
        return None
    if isinstance(volumes, str):
        volumes = [volumes]
    if isinstance(volumes, Mapping):
        pairs = [(str(k), str(v or "latest")) for k, v in volumes.items()]
    else:
        pairs = []
        for item in volumes:
            name, _, version = str(item).partition("@")
            pairs.append((name, version or "latest"))
    for name, _ in pairs:
        check_name(name, "volumes")
    return dict(pairs)


def _run_filter(
    status: str | None, agent_id: str | None, since: datetime | None
) -> Callable[[Run], bool] | None:
    if not (status or agent_id or since):
        return None
    want_agent = plain_id(agent_id) if agent_id else None

    def keep(run: Run) -> bool:
        if status and run.status != status:
            return False
        if want_agent and plain_id(run.agent_id or "") != want_agent:
            return False
        return not (since and run.created_at and run.created_at < since)

    return keep
