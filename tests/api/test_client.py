"""Client, resources, pagination, errors and retries, against the real local server.

Tests taking the ``api`` fixture run twice: straight to the server and through the variant
proxy (camelCase, plain ids, ignored filters, 302 downloads, complete-only finished streams).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import vm0_notebook as vm0
from tests.proxies import FaultProxy, Proxy
from vm0_notebook.api._parse import plain_id


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- agents -------------------------------------------------------------------------------------


def test_agents_crud_and_versions(api: Any) -> None:
    name = unique("agent")
    config = {"command": ["{python}", "-c", "print('hi')"], "timeout_s": 30}
    created = api.agents.create(name, config, description="says hi")
    assert created.name == name and isinstance(created.id, str)
    if api.variant == "variant":
        assert not created.id.startswith("agt_")  # the proxy strips prefixes

    got = api.agents.get(name)
    assert got.id == created.id and got.config == config
    assert api.agents.get(created.id).name == name

    updated = api.agents.update(name, {**config, "timeout_s": 31})
    assert updated.config["timeout_s"] == 31
    versions = list(api.agents.versions(created.id))
    assert [v.version_number for v in versions] == [2, 1]

    names = [a.name for a in api.agents.list()]
    assert {"echo", "python", "shell", name} <= set(names)
    assert [a.name for a in api.agents.list(name=name)] == [name]

    api.agents.delete(name)
    with pytest.raises(vm0.NotFoundError) as exc:
        api.agents.get(name)
    assert "echo" in str(exc.value)  # says which agents exist


def test_duplicate_agent_is_a_conflict(api: Any) -> None:
    name = unique("dup")
    api.agents.create(name, {"command": ["true"]})
    with pytest.raises(vm0.ConflictError) as exc:
        api.agents.create(name, {"command": ["true"]})
    assert exc.value.status == 409 and exc.value.request_id.startswith("req_")


# -- runs -----------------------------------------------------------------------------------------


def test_run_lifecycle(api: Any) -> None:
    run = api.runs.create(agent="echo", prompt="hello there general kenobi")
    assert run.status in ("pending", "running") and run.agent_name == "echo"
    assert run.wait(timeout=60) is run
    assert run.status == "completed" and run.finished and run.ok
    assert run.output == "hello there general kenobi"
    assert run.execution_time_ms is not None and run.session_id
    again = api.runs.get(run.id)
    assert again.id == run.id and again.status == "completed"
    assert run.raise_for_status() is run


def test_run_output_from_stream(api: Any) -> None:
    run = api.runs.create(agent="echo", prompt="streamed words here")
    kinds = [e.event for e in run.stream()]
    assert kinds[0] == "status" and kinds[-1] == "complete"
    assert run.status == "completed" and run.output == "streamed words here"


def test_failed_run_raises_for_status(api: Any) -> None:
    run = api.runs.create(agent="python", prompt="raise SystemExit(3)").wait(timeout=60)
    assert run.status == "failed"
    with pytest.raises(vm0.RunFailedError) as exc:
        run.raise_for_status()
    assert exc.value.run is run and run.id in str(exc.value) and "run.logs()" in str(exc.value)


def test_cancel_counts_as_finished(api: Any) -> None:
    run = api.runs.create(agent="python", prompt="import time; time.sleep(60)")
    run.cancel()
    assert run.status == "cancelled" and run.finished
    assert run.wait(timeout=30).status == "cancelled"
    with pytest.raises(vm0.InvalidRequestError) as exc:
        api.runs.cancel(api.runs.create(agent="echo", prompt="x").wait(timeout=60).id)
    assert exc.value.code == "invalid_state"


def test_wait_timeout_leaves_the_run_going(api: Any) -> None:
    run = api.runs.create(agent="python", prompt="import time; time.sleep(60)")
    with pytest.raises(vm0.WaitTimeoutError) as exc:
        run.wait(timeout=0.2)
    assert exc.value.run is run and not run.finished
    run.cancel()


def test_follow_up_continues_the_session(api: Any) -> None:
    first = api.runs.create(agent="echo", prompt="one").wait(timeout=60)
    second = first.follow_up("two").wait(timeout=60)
    assert second.session_id == first.session_id and second.output == "two"
    third = first.resume("three").wait(timeout=60)
    assert third.status == "completed" and third.output == "three"


def test_run_list_filters_apply_even_when_the_server_ignores_them(api: Any) -> None:
    agent = api.agents.create(unique("lister"), {"command": ["true"]})
    runs = [api.runs.create(agent_id=agent.id, prompt=f"p{i}") for i in range(3)]
    other = api.runs.create(agent="echo", prompt="elsewhere")
    listed = list(api.runs.list(agent_id=agent.id))
    assert sorted(r.id for r in listed) == sorted(r.id for r in runs)
    assert other.id not in {r.id for r in api.runs.list(agent_id=agent.id)}

    future = datetime.now(UTC) + timedelta(days=1)
    assert list(api.runs.list(since=future)) == []
    for r in [*runs, other]:
        r.wait(timeout=60)
    done = list(api.runs.list(status="completed", limit=3))  # 4 exist on a fresh server
    assert len(done) == 3 and all(r.status == "completed" for r in done)


def test_lists_page_lazily(api: Any, local_server: Any) -> None:
    agent = api.agents.create(unique("pager"), {"command": ["true"]})
    made = {api.runs.create(agent_id=agent.id, prompt=f"p{i}").id for i in range(5)}
    pager = api.runs.list(agent_id=agent.id)
    pager._request.params["limit"] = 2  # small pages, so the cursor is followed
    assert {r.id for r in pager} == made
    assert len(list(api.runs.list(limit=3))) == 3
    # the same lists as the API's JSON objects, filters and limits kept
    raw = list(api.runs.list(agent_id=agent.id).as_json())
    assert all(type(item) is dict for item in raw) and {item["id"] for item in raw} == made
    assert [item["name"] for item in api.agents.list(name=agent.name).as_json()] == [agent.name]
    assert len(list(api.runs.list(agent_id=agent.id, limit=2).as_json())) == 2


def test_logs_and_metrics(api: Any) -> None:
    run = api.runs.create(agent="echo", prompt="log me please").wait(timeout=60)
    entries = list(api.runs.logs(run.id, type="agent"))
    assert entries and all(e.type == "agent" for e in entries)
    assert [e.sequence for e in entries] == sorted(e.sequence for e in entries)
    result = json.loads(entries[-1].message)
    assert result["type"] == "result" and result["result"] == "log me please"
    metrics = api.runs.metrics(run.id)
    assert metrics.points and metrics.points[0].timestamp is not None
    assert "cpu_avg_percent" in metrics.summary


def test_to_pandas(api: Any) -> None:
    pytest.importorskip("pandas")
    run = api.runs.create(agent="echo", prompt="frame me").wait(timeout=60)
    frame = api.runs.list(limit=3).to_pandas()
    assert len(frame) == 3 and "status" in frame.columns
    logs = run.logs(type="agent")
    assert len(logs) >= 3


def test_map_runs_prompts_concurrently(api: Any) -> None:
    frame = api.map("echo", ["a b", "c d", "e f"], concurrency=3)
    assert list(frame["prompt"]) == ["a b", "c d", "e f"]
    assert list(frame["output"]) == ["a b", "c d", "e f"]
    assert set(frame["status"]) == {"completed"}


# -- errors and bad input -------------------------------------------------------------------------


def test_unknown_agent_names_the_agents_that_exist(api: Any) -> None:
    with pytest.raises(vm0.NotFoundError) as exc:
        api.runs.create(agent="no-such-agent", prompt="hi")
    message = str(exc.value)
    assert "no-such-agent" in message and "echo" in message and "python" in message
    assert exc.value.request_id and exc.value.status == 404


BAD_INPUT = [
    ("runs", {"agent": "echo", "prompt": ""}, "prompt"),
    ("runs", {"prompt": "x"}, "agent"),
    ("runs", {"session_id": "ses_1", "prompt": "   "}, "prompt"),
    ("agents", {"name": "Bad_Name", "config": {}}, "name"),
    ("agents", {"name": "-dash", "config": {}}, "name"),
    ("agents", {"name": "x" * 101, "config": {}}, "name"),
    ("volumes", {"name": "no_underscores"}, "name"),
]


@pytest.mark.parametrize(("group", "body", "param"), BAD_INPUT)
def test_bad_input_is_refused_before_any_request(
    group: str, body: dict[str, Any], param: str, local_server: Any, proxy: Any
) -> None:
    counting = proxy(Proxy)
    client = vm0.Client(api_url=counting.url, api_key=local_server.token)
    with pytest.raises(vm0.InvalidRequestError) as exc:
        getattr(client, group).create(**body)
    assert counting.seen == []
    # the same message the server gives for the same body
    raw = httpx.post(f"{local_server.url}/v1/{group}", json=body,
                     headers={"Authorization": f"Bearer {local_server.token}"})
    assert raw.status_code == 400
    assert exc.value.message == raw.json()["error"]["message"]
    assert exc.value.param == param == raw.json()["error"].get("param")


def test_bad_names_are_refused_before_any_request(local_server: Any, proxy: Any) -> None:
    counting = proxy(Proxy)
    client = vm0.Client(api_url=counting.url, api_key=local_server.token)
    for call in (lambda: client.runs.create(agent="Bad_Name", prompt="x"),
                 lambda: client.runs.create(agent="echo", prompt="x", volumes=["Bad"]),
                 lambda: client.runs.create(agent="echo", prompt="x", variables={"A": 1}),
                 lambda: client.volumes.push(".", "a b"),
                 lambda: client.volumes.mount("data", version="abc")):
        with pytest.raises(vm0.InvalidRequestError):
            call()
    assert counting.seen == []


def test_wrong_key_is_an_authentication_error_without_the_key(local_server: Any) -> None:
    key = "vm0_live_" + "s3cr3t" * 5
    client = vm0.Client(api_url=local_server.url, api_key=key)
    with pytest.raises(vm0.AuthenticationError) as exc:
        client.agents.get("echo")
    assert exc.value.status == 401
    for text in (str(exc.value), repr(exc.value), repr(client)):
        assert key not in text
    assert repr(client).endswith("'vm0_live_…cr3t')")


@pytest.mark.parametrize(
    ("status", "ctype", "body", "error"),
    [
        (502, "text/html", b"<html><h1>Bad Gateway</h1></html>", vm0.InternalServerError),
        (404, "text/html", b"<html>Not here</html>", vm0.APINotServedError),
        (200, "application/json", b'{"id": "run_1", "sta', vm0.InvalidResponseError),
        (200, "application/json", b'["not", "a", "run"]', vm0.InvalidResponseError),
    ],
)
def test_off_contract_answers_are_clear_errors(
    local_server: Any, proxy: Any, status: int, ctype: str, body: bytes, error: type
) -> None:
    broken = proxy(FaultProxy, broken={r"^/v1/runs/": (status, ctype, body)})
    client = vm0.Client(api_url=broken.url, api_key=local_server.token, retry_backoff=0.01)
    with pytest.raises(error) as exc:
        client.runs.get("run_" + "0" * 24)
    assert isinstance(exc.value, vm0.VM0Error)
    assert exc.value.request_id == "req_" + "b" * 32
    assert str(status) in str(exc.value) or status == 404


# -- retries and idempotency ----------------------------------------------------------------------


def test_retries_through_503_and_429(local_server: Any, proxy: Any) -> None:
    faulty = proxy(FaultProxy, error_rate=0.4, seed=3)
    client = vm0.Client(api_url=faulty.url, api_key=local_server.token, max_attempts=12,
                        retry_backoff=0.01)
    for _ in range(15):
        assert client.agents.get("echo").name == "echo"
    assert faulty.faults.get("503") and faulty.faults.get("429")


def test_retries_give_up_after_max_attempts(local_server: Any, proxy: Any) -> None:
    faulty = proxy(FaultProxy, error_rate=1.0)
    client = vm0.Client(api_url=faulty.url, api_key=local_server.token, max_attempts=3,
                        retry_backoff=0.01)
    with pytest.raises((vm0.InternalServerError, vm0.RateLimitError)):
        client.agents.get("echo")
    assert len(faulty.seen) == 3


def test_connection_refused_is_a_connection_error() -> None:
    with socket_closed_port() as port:
        client = vm0.Client(api_url=f"http://127.0.0.1:{port}", api_key="vm0_test_x",
                            max_attempts=2, retry_backoff=0.01)
        with pytest.raises(vm0.APIConnectionError) as exc:
            client.agents.get("echo")
    assert f"127.0.0.1:{port}" in str(exc.value)


def socket_closed_port() -> Any:
    import contextlib
    import socket

    @contextlib.contextmanager
    def closed() -> Any:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        yield port

    return closed()


# -- sync inside a running loop, async parity, light import ---------------------------------------


def test_sync_client_works_inside_a_running_event_loop(client: Any) -> None:
    async def inside_loop() -> str:
        # what a Jupyter cell does: blocking calls while the kernel's loop runs
        return client.runs.create(agent="echo", prompt="in a loop").wait(timeout=60).output

    assert asyncio.run(inside_loop()) == "in a loop"


def test_async_client_has_the_same_surface(local_server: Any) -> None:
    async def main() -> None:
        async with vm0.AsyncClient(api_url=local_server.url + "/v1/",
                                   api_key=local_server.token) as aclient:
            run = await aclient.runs.create(agent="echo", prompt="async hello")
            events = [e async for e in run.stream()]
            assert events[-1].event == "complete" and run.output == "async hello"
            assert (await aclient.runs.get(run.id)).status == "completed"
            names = [a.name async for a in aclient.agents.list()]
            assert "echo" in names
            agent = await aclient.agents.get("echo")
            assert agent.name == "echo"
            other = await (await aclient.runs.create(agent="echo", prompt="x y")).wait(timeout=60)
            assert other.status == "completed" and await other.fetch_output() == "x y"
            frame = await aclient.map("echo", ["p", "q"])
            assert list(frame["output"]) == ["p", "q"]

    asyncio.run(main())


def test_api_url_forms(local_server: Any) -> None:
    for url in (local_server.url, local_server.url + "/", local_server.url + "/v1"):
        client = vm0.Client(api_url=url, api_key=local_server.token)
        assert client.api_url == local_server.url
        assert client.agents.get("echo").name == "echo"
    assert plain_id("run_" + "a" * 24) == "a" * 24
