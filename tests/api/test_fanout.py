"""``client.map`` and ``aclient.map`` against the real local server (and the fault proxy)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
import tqdm.auto

import vm0_notebook as vm0
from tests.proxies import FaultProxy

SLOW = "import time; time.sleep(120)"


def penguins(n: int) -> pd.DataFrame:
    species = ["Adelie", "Gentoo", "Chinstrap"]
    islands = ["Biscoe", "Dream", "Torgersen"]
    return pd.DataFrame(
        {
            "species": [species[i % 3] for i in range(n)],
            "island": [islands[(i // 3) % 3] for i in range(n)],
            "mass_g": [3000 + 10 * i for i in range(n)],
        },
        index=pd.Index([f"p{i:02d}" for i in range(n)], name="tag"),
    )


def test_dataframe_with_template_keeps_order_columns_and_dtypes(client: Any) -> None:
    df = penguins(30)
    out = client.map("echo", df, template="Describe {species} on {island} ({mass_g} g)",
                     concurrency=8)
    assert list(out.columns) == ["species", "island", "mass_g", *vm0.api.fanout.RESULT_COLUMNS]
    assert out.index.equals(df.index) and out.index.name == "tag"
    assert out["mass_g"].dtype == df["mass_g"].dtype
    assert str(out["execution_time_ms"].dtype) == "Int64"
    expected = [f"Describe {s} on {i} ({m} g)" for s, i, m in
                zip(df["species"], df["island"], df["mass_g"], strict=True)]
    assert list(out["prompt"]) == expected
    assert list(out["output"]) == expected  # echo answers with its prompt, so order is kept
    assert set(out["status"]) == {"completed"}
    assert out["run_id"].is_unique and out["error"].isna().all()
    assert all(isinstance(u, dict) and u["output_tokens"] > 0 for u in out["usage"])
    assert (out["execution_time_ms"] >= 0).all()
    assert client.runs.get(out.loc["p07", "run_id"]).prompt == expected[7]


def test_series_list_and_prompt_column(client: Any) -> None:
    names = pd.Series(["Ada", "Grace"], name="who", index=[10, 20])
    out = client.map("echo", names, template="Say hello to {who}", progress=False)
    assert list(out.index) == [10, 20] and list(out["who"]) == ["Ada", "Grace"]
    assert list(out["output"]) == ["Say hello to Ada", "Say hello to Grace"]
    plain = client.map("echo", ["one", "two"], progress=False)
    assert list(plain.columns) == list(vm0.api.fanout.RESULT_COLUMNS)
    framed = client.map("echo", pd.DataFrame({"prompt": ["x y"], "k": [1]}), progress=False)
    assert list(framed.columns[:2]) == ["k", "prompt"] and framed["output"][0] == "x y"
    empty = client.map("echo", [], progress=False)
    assert empty.empty and list(empty.columns) == list(vm0.api.fanout.RESULT_COLUMNS)


def test_a_failing_item_is_a_row(client: Any) -> None:
    out = client.map("shell", ["echo one", "exit 3", "echo three"], concurrency=3)
    assert list(out["status"]) == ["completed", "failed", "completed"]
    assert out["output"][0].strip() == "one" and out["output"][2].strip() == "three"
    assert out["error"][1] and "3" in out["error"][1]
    assert out["run_id"].notna().all()


def test_raise_on_error_lists_the_failures(client: Any) -> None:
    with pytest.raises(vm0.MapError) as exc:
        client.map("shell", ["echo ok", "exit 3", "exit 4"], raise_on_error=True)
    error = exc.value
    assert "2 of 3 runs did not complete" in str(error)
    assert "#1 failed" in str(error) and "#2 failed" in str(error)
    assert len(error.frame) == 3 and list(error.failures.index) == [1, 2]


@pytest.mark.parametrize(
    ("prompts", "options", "words"),
    [
        ("just one", {}, "not one string"),
        (pd.DataFrame({"a": [1]}), {}, "template"),
        (pd.DataFrame({"a": [1]}), {"template": "{b}"}, "{b}"),
        (pd.DataFrame({"status": [1]}), {"template": "{status}"}, "result column"),
        (pd.Series(["a"], name="output"), {"template": "say {}"}, "result column"),
        (["ok", ""], {}, "prompt #1 is empty"),
        (["a"], {"concurrency": 0}, "concurrency"),
        (["a"], {"idempotency_key": "k"}, "idempotency_key"),
        (["a"], {"volumes": ["Bad Name"]}, "volumes"),
        (["a"], {"variabels": {"A": "1"}}, "unknown run option 'variabels'"),
    ],
)
def test_bad_input_is_refused_before_any_run(client: Any, prompts: Any, options: Any,
                                             words: str) -> None:
    before = client.runs.list(limit=1).to_list()
    with pytest.raises(vm0.InvalidRequestError) as exc:
        client.map("echo", prompts, **options)
    assert words in str(exc.value)
    assert client.runs.list(limit=1).to_list() == before


def test_unknown_agent_stops_the_map_with_one_error(client: Any) -> None:
    with pytest.raises(vm0.NotFoundError):
        client.map("no-such-agent", ["a", "b", "c"], progress=False)


class _Interrupting(tqdm.auto.tqdm):  # type: ignore[misc, name-defined]
    """A progress bar that presses Ctrl-C once ``after`` runs have finished."""

    after = 3

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        if self.n >= self.after:
            raise KeyboardInterrupt
        return shown


def _interrupt_prompts() -> list[str]:
    return ["print(1)", "print(2)", "print(3)"] + [SLOW] * 9


def _check_cancelled(client: Any, frame: pd.DataFrame, since: datetime) -> None:
    assert len(frame) == 12
    assert list(frame["status"][:3]) == ["completed"] * 3
    assert set(frame["status"][3:]) == {"cancelled"}
    started = frame["run_id"].dropna()
    assert 3 < len(started) < 12  # some were going, some never started
    for run_id in started:
        assert client.runs.get(run_id).status in ("completed", "cancelled")
    active = [r for r in client.runs.list(since=since) if r.status in ("pending", "running")]
    assert active == []


def test_ctrl_c_cancels_running_and_unstarted_runs(client: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(tqdm.auto, "tqdm", _Interrupting)
    since = datetime.now(UTC)
    with pytest.raises(vm0.MapInterrupted) as exc:
        client.map("python", _interrupt_prompts(), concurrency=4)
    assert isinstance(exc.value, KeyboardInterrupt)
    assert "3 of 12 runs completed" in str(exc.value)
    _check_cancelled(client, exc.value.frame, since)


def test_async_map_and_its_ctrl_c(local_server: Any, client: Any, monkeypatch: Any) -> None:
    async def main() -> tuple[pd.DataFrame, BaseException]:
        async with vm0.AsyncClient(api_url=local_server.url,
                                   api_key=local_server.token) as aclient:
            frame = await aclient.map("echo", penguins(6), template="{species} {island}",
                                      concurrency=3)
            monkeypatch.setattr(tqdm.auto, "tqdm", _Interrupting)
            try:
                await aclient.map("python", _interrupt_prompts(), concurrency=4)
            except vm0.MapInterrupted as exc:
                return frame, exc
            raise AssertionError("not interrupted")

    since = datetime.now(UTC)
    frame, error = asyncio.run(main())
    assert list(frame["output"]) == [f"{s} {i}" for s, i in
                                     zip(frame["species"], frame["island"], strict=True)]
    assert all(isinstance(u, dict) for u in frame["usage"])
    _check_cancelled(client, error.frame, since)  # type: ignore[attr-defined]


def test_through_503_and_429_storms_each_input_makes_exactly_one_run(
    client: Any, proxy: Any, local_server: Any
) -> None:
    faults: FaultProxy = proxy(FaultProxy, error_rate=0.3, lose_rate=0.15, seed=13)
    flaky = vm0.Client(api_url=faults.url, api_key=local_server.token, retry_backoff=0.01)
    marker = uuid.uuid4().hex[:8]
    prompts = [f"{marker} item {i}" for i in range(50)]
    since = datetime.now(UTC)
    out = flaky.map("echo", prompts, concurrency=8, progress=False)
    flaky.close()
    assert faults.faults.get("503", 0) > 5 and faults.faults.get("429", 0) > 5
    assert faults.faults.get("lost", 0) > 0
    assert faults.count("POST", r"^/v1/runs$") > 50  # retried creates
    assert list(out["status"]) == ["completed"] * 50
    assert list(out["output"]) == prompts
    made = [r for r in client.runs.list(since=since) if (r.prompt or "").startswith(marker)]
    assert len(made) == 50 and sorted(r.id for r in made) == sorted(out["run_id"])
