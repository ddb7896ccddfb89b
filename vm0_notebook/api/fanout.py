"""``client.map``: one run per input, ``concurrency`` at a time, one DataFrame row per input.

    df = client.map("echo", penguins, template="Describe {species} on {island}", concurrency=8)
    df[["species", "island", "status", "output"]]

    df = await aclient.map("echo", ["a", "b"])        # AsyncClient: awaitable, no threads

What a run of ``map`` promises, on either client:
- rows in input order, the input's index and columns kept, then ``RESULT_COLUMNS``;
- a tqdm.auto bar counting finished runs, failures in its postfix;
- a failed run is a row (``status``, ``error``); ``raise_on_error=True`` raises
  :class:`~.errors.MapError` listing them instead;
- 429 (``rate_limited``, ``concurrent_run_limit_exceeded``), 502/503/504 and dropped connections
  are waited out (``Retry-After`` honoured) without failing an item, and every create carries its
  own ``Idempotency-Key``, so no retry ever starts a second run;
- Ctrl-C cancels the runs still going and those not started, then raises
  :class:`~.errors.MapInterrupted` with the frame of what finished;
- an error no retry can fix (an unknown agent, a bad option, a refused key) stops the whole map
  the same way and is raised as it is, rather than making a failed row of every input.

The sync client runs each item in a worker thread; the async one in a task. Both share the input
handling, the retry decisions and the frame building below.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import uuid
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._validate import check_name, invalid
from .errors import (
    APIConnectionError,
    APIStatusError,
    MapError,
    MapInterrupted,
    RateLimitError,
    VM0Error,
)
from .models import Event
from .resources.runs import run_body
from .run import Run

if TYPE_CHECKING:  # pragma: no cover
    from pandas import DataFrame

__all__ = ["RESULT_COLUMNS", "map_async", "map_sync"]

RESULT_COLUMNS = ("prompt", "run_id", "status", "output", "error", "execution_time_ms",
                  "artifact_version", "usage")
# the status of a row whose run could not be created or followed (not a run status)
ERROR = "error"
# map-level tries per step, on top of the client's own retries of each request: a 429 is waited
# out longer, since a concurrency limit clears as other runs finish
_RATE_LIMIT_TRIES = 30
_TRANSIENT_TRIES = 8
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_LISTED = 5  # failures named in a MapError's message


# -- inputs -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """The prompts of a map, and the input columns and index its frame keeps."""

    prompts: list[str]
    inputs: DataFrame | None
    index: Any


def make_plan(prompts: Any, template: str | None) -> Plan:
    """The prompts from a list, a Series or a DataFrame (rows filled into ``template``).

    Raises InvalidRequestError naming the input at fault, before any run starts.
    """
    if template is not None and not isinstance(template, str):
        raise invalid("'template' must be a string such as 'Describe {species}'", "template")
    if isinstance(prompts, str | bytes):
        raise invalid("'prompts' must be a list, Series or DataFrame of prompts, not one "
                      "string; wrap it in a list", "prompts")
    kind = type(prompts).__name__ if type(prompts).__module__.startswith("pandas") else None
    if kind == "DataFrame":
        plan = _frame_plan(prompts, template)
    elif kind == "Series":
        name = prompts.name if isinstance(prompts.name, str) else "input"
        items = list(prompts)
        texts = [_fill(template, i, (item,), {"item": item, name: item}) for i, item in
                 enumerate(items)] if template else items
        plan = Plan(texts, prompts.to_frame(name) if template else None, prompts.index)
    elif isinstance(prompts, Iterable):
        import pandas as pd

        items = list(prompts)
        texts = [_fill(template, i, (item,), {"item": item}) for i, item in
                 enumerate(items)] if template else items
        inputs = pd.DataFrame({"input": items}) if template else None
        plan = Plan(texts, inputs, pd.RangeIndex(len(items)))
    else:
        raise invalid(f"'prompts' must be a list, Series or DataFrame, not "
                      f"{type(prompts).__name__}", "prompts")
    clash = [c for c in plan.inputs.columns if c in RESULT_COLUMNS] \
        if plan.inputs is not None else []
    if clash:
        raise invalid(f"column {clash[0]!r} has the name of a result column; rename it "
                      f"(results: {', '.join(RESULT_COLUMNS)})", "prompts")
    for i, text in enumerate(plan.prompts):
        if not isinstance(text, str) or not text.strip():
            what = "empty" if isinstance(text, str) else f"a {type(text).__name__}"
            raise invalid(f"prompt #{i} is {what}; every prompt must be non-empty text"
                          + ("" if template else " (or give template=...)"), "prompts")
    return plan


def _frame_plan(df: DataFrame, template: str | None) -> Plan:
    columns = [str(c) for c in df.columns]
    if template is None:
        if "prompt" not in columns:
            raise invalid("give template='... {column} ...' to make a prompt of each row, or a "
                          f"'prompt' column (the columns: {', '.join(columns) or 'none'})",
                          "template")
        inputs = df.drop(columns="prompt")
        texts = list(df["prompt"])
    else:
        inputs = df
        rows = df.to_dict("records")
        texts = [_fill(template, i, (), {str(k): v for k, v in row.items()}, columns)
                 for i, row in enumerate(rows)]
    return Plan(texts, inputs, df.index)


def _fill(template: str | None, i: int, args: tuple[Any, ...], names: dict[str, Any],
          columns: list[str] | None = None) -> str:
    assert template is not None
    try:
        return template.format(*args, **names)
    except KeyError as exc:
        known = ", ".join(columns) if columns is not None else ", ".join(names)
        raise invalid(f"template names {{{exc.args[0]}}}, which input #{i} does not have "
                      f"(it has: {known}); write {{{{ and }}}} for literal braces",
                      "template") from None
    except (IndexError, ValueError, AttributeError) as exc:
        hint = "name columns as {column}" if columns is not None else "write {} or {item}"
        raise invalid(f"cannot fill template for input #{i}: {exc}; {hint}, and {{{{ }}}} "
                      "for literal braces", "template") from None


def check_options(agent: str, concurrency: int, options: dict[str, Any]) -> None:
    """Bad arguments raise here, before any run starts."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise invalid(f"'concurrency' must be a whole number of at least 1, not {concurrency!r}",
                      "concurrency")
    if "idempotency_key" in options or "prompt" in options:
        name = "idempotency_key" if "idempotency_key" in options else "prompt"
        raise invalid(f"map makes the '{name}' of each run itself; leave it out", name)
    known = _run_options()
    unknown = sorted(set(options) - known)
    if unknown:
        raise invalid(f"unknown run option {unknown[0]!r}; the options are: "
                      f"{', '.join(sorted(known))}", unknown[0])
    check_name(agent, "agent")
    run_body("-", agent=agent, **options)


def _run_options() -> set[str]:
    """The options ``runs.create`` takes besides the agent, the prompt and the key."""
    from .resources.runs import Runs

    names = inspect.signature(Runs._create_op).parameters
    return set(names) - {"self", "prompt", "agent", "idempotency_key"}


# -- one input --------------------------------------------------------------------------------


@dataclass
class Item:
    """One input's run as the map follows it."""

    position: int
    prompt: str
    # one key for every try of this input's create, so no retry starts a second run
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    run: Run | None = None
    error: str | None = None
    started: bool = False
    last_sequence: int = 0

    def observe(self, event: Event) -> None:
        """The stream's observer: the run's own bookkeeping, plus where to resume after a drop."""
        assert self.run is not None
        self.run._observe(event)
        if event.event == "output":
            self.last_sequence = event.sequence or self.last_sequence

    @property
    def status(self) -> str:
        """The row's status: the run's, ``cancelled`` if never started, else ``error``."""
        if self.run is not None and (self.error is None or self.run.finished):
            return self.run.status
        return "cancelled" if not self.started else ERROR

    @property
    def ok(self) -> bool:
        """True when the run completed."""
        return self.status == "completed"

    def row(self) -> dict[str, Any]:
        """The item's result columns."""
        run = self.run
        error = self.error
        if error is None and run is not None:
            error = run.error
        if not self.started:
            error = error or "not started: the map was interrupted"
        return {
            "prompt": self.prompt,
            "run_id": run.id if run else None,
            "status": self.status,
            "output": run.output if run else None,
            "error": error,
            "execution_time_ms": run.execution_time_ms if run else None,
            "artifact_version": run.artifact_version if run else None,
            "usage": run.usage if run else None,
        }


def build_frame(plan: Plan, items: list[Item]) -> DataFrame:
    """One row per input, in input order: the input columns, then ``RESULT_COLUMNS``."""
    import pandas as pd

    results = pd.DataFrame([item.row() for item in items], columns=list(RESULT_COLUMNS))
    results["execution_time_ms"] = results["execution_time_ms"].astype("Int64")
    if plan.inputs is not None:
        inputs = plan.inputs.reset_index(drop=True)
        results = pd.concat([inputs, results], axis=1)
    results.index = plan.index
    return results


def finish(plan: Plan, items: list[Item], raise_on_error: bool) -> DataFrame:
    """The frame of a map that ran to its end; a MapError instead if asked and runs failed."""
    frame = build_frame(plan, items)
    failed = [item for item in items if not item.ok]
    if raise_on_error and failed:
        listed = "; ".join(
            f"#{item.position} {item.status}" + (f": {_one_line(item.row()['error'])}"
                                                 if item.row()["error"] else "")
            for item in failed[:_LISTED]
        )
        more = f"; and {len(failed) - _LISTED} more" if len(failed) > _LISTED else ""
        raise MapError(f"{len(failed)} of {len(items)} runs did not complete: {listed}{more}"
                       " (the rows are in e.failures)",
                       frame=frame, failures=frame[frame["status"] != "completed"])
    return frame


def interrupted(plan: Plan, items: list[Item]) -> MapInterrupted:
    """The error a Ctrl-C ends a map with, carrying the frame of what finished."""
    frame = build_frame(plan, items)
    done = sum(1 for item in items if item.ok)
    return MapInterrupted(f"map interrupted: {done} of {len(items)} runs completed; the rest were"
                          " cancelled (the frame is in e.frame)", frame=frame)


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def backoff(client: Any, error: BaseException, attempt: int) -> float | None:
    """Seconds to wait before trying a step again after ``error``, or None to give up."""
    if isinstance(error, RateLimitError):
        tries, after = _RATE_LIMIT_TRIES, error.retry_after
    elif isinstance(error, APIConnectionError) or (
        isinstance(error, APIStatusError) and error.status in _TRANSIENT_STATUSES
    ):
        tries, after = _TRANSIENT_TRIES, None
    else:
        return None
    if attempt >= tries:
        return None
    return float(client.retry.delay(attempt, after))


def fatal(error: BaseException) -> bool:
    """Whether a create's error would be the same for every input (bad agent, key, option)."""
    return isinstance(error, APIStatusError) and error.status not in _TRANSIENT_STATUSES


# -- one input's steps, driven by either client -------------------------------------------------


@dataclass(frozen=True)
class Call:
    """Call ``fn`` (its result is awaited on the async client) and send back what it returns."""

    fn: Callable[[], Any]


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds``, or less once the map is stopping; sends back True if it is."""

    seconds: float


def item_steps(client: Any, agent: str, item: Item, options: dict[str, Any],
               stopping: Callable[[], bool]) -> Generator[Any, Any, None]:
    """One input: create its run (same key on every try), follow it to its end, read its
    detail. Transient errors are waited out; a stopping map cancels the run."""
    if stopping():
        return
    item.started = True

    def create() -> Any:
        return client.runs.create(agent=agent, prompt=item.prompt, idempotency_key=item.key,
                                  **options)

    try:
        attempt, unsure = 0, False
        while item.run is None:
            attempt += 1
            try:
                item.run = yield Call(create)
                break
            except VM0Error as exc:
                wait = backoff(client, exc, attempt)
                if wait is None:
                    if fatal(exc):
                        raise
                    item.error = client.scrub(str(exc))
                    return
                unsure = unsure or not isinstance(exc, RateLimitError)  # a 429 started nothing
            if (yield Pause(wait)):
                if not unsure:
                    item.started = False
                    return
                # a try that may have gone through: the same key finds its run, to cancel it
                item.run = yield Call(create)
        run = item.run
        if not stopping():
            yield from _retrying(client, lambda: _drain(
                client, client.runs.events(run.id, item.last_sequence or None,
                                           _observer=item.observe)))
            yield from _retrying(client, run.refresh)
    except VM0Error as exc:
        if fatal(exc) and item.run is None:
            raise
        item.error = client.scrub(str(exc))
    if stopping():
        yield from cancel_steps(item)


def _retrying(client: Any, fn: Callable[[], Any]) -> Generator[Any, Any, None]:
    attempt = 0
    while True:
        attempt += 1
        try:
            yield Call(fn)
            return
        except VM0Error as exc:
            wait = backoff(client, exc, attempt)
            if wait is None:
                raise
        if (yield Pause(wait)):
            return


def cancel_steps(item: Item) -> Generator[Any, Any, None]:
    """Cancel the item's run if it is still going (a finished one is left as it is)."""
    if item.run is None or item.run.finished:
        return
    # finished meanwhile, or the server is gone: the row says what is known
    with contextlib.suppress(VM0Error):
        yield Call(item.run.cancel)


def _drain(client: Any, events: Any) -> Any:
    """Read an event stream to its end (a coroutine that does so on the async client)."""
    if client.is_sync:
        for _ in events:
            pass
        return None

    async def consume() -> None:
        async for _ in events:
            pass

    return consume()


class Progress:
    """The tqdm.auto bar of a map: finished runs, failures in the postfix."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.failed = 0
        self.bar: Any = None
        if enabled and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="run")

    def finished(self, item: Item) -> None:
        """Count one finished item."""
        if not item.ok:
            self.failed += 1
        if self.bar is not None:
            if not item.ok:
                self.bar.set_postfix(failed=self.failed, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        """Leave the bar where it ended."""
        if self.bar is not None:
            self.bar.close()


# -- the sync client: a worker thread per running item ----------------------------------------


def map_sync(client: Any, agent: str, prompts: Any, concurrency: int = 8,
             template: str | None = None, raise_on_error: bool = False, progress: bool = True,
             **options: Any) -> DataFrame:
    """``Client.map`` (see the module docstring)."""
    check_options(agent, concurrency, options)
    plan = make_plan(prompts, template)
    items = [Item(i, text) for i, text in enumerate(plan.prompts)]
    stop = threading.Event()
    bar = Progress(len(items), agent, progress)
    pool = ThreadPoolExecutor(min(concurrency, max(1, len(items))), thread_name_prefix="vm0-map")
    try:
        futures = {
            pool.submit(drive_sync, item_steps(client, agent, item, options, stop.is_set), stop):
            item for item in items
        }
        for future in as_completed(futures):
            future.result()  # an error no retry can fix stops the map
            bar.finished(futures[future])
    except BaseException as exc:  # Ctrl-C, or an error no retry can fix
        stop.set()
        for item in items:  # the workers end as their runs' streams do
            drive_sync(cancel_steps(item), stop)
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        if isinstance(exc, KeyboardInterrupt):
            raise interrupted(plan, items) from None
        raise
    pool.shutdown()
    bar.close()
    return finish(plan, items, raise_on_error)


def advance(steps: Generator[Any, Any, None], value: Any, error: Exception | None
            ) -> Call | Pause | None:
    """The next step once ``steps`` has ``value`` (or ``error`` thrown in); None at the end."""
    try:
        return steps.throw(error) if error is not None else steps.send(value)
    except StopIteration:
        return None


def drive_sync(steps: Generator[Any, Any, None], stop: threading.Event) -> None:
    """Run an item's steps in this thread."""
    value: Any = None
    error: Exception | None = None
    while (step := advance(steps, value, error)) is not None:
        value, error = None, None
        if isinstance(step, Pause):
            value = stop.wait(step.seconds)
            continue
        try:
            value = step.fn()
        except Exception as exc:
            error = exc


# -- the async client: a task per item, no threads --------------------------------------------


async def map_async(client: Any, agent: str, prompts: Any, concurrency: int = 8,
                    template: str | None = None, raise_on_error: bool = False,
                    progress: bool = True, **options: Any) -> DataFrame:
    """``AsyncClient.map`` (see the module docstring)."""
    check_options(agent, concurrency, options)
    plan = make_plan(prompts, template)
    items = [Item(i, text) for i, text in enumerate(plan.prompts)]
    limit = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    bar = Progress(len(items), agent, progress)

    async def one(item: Item) -> Item:
        async with limit:
            await drive_async(item_steps(client, agent, item, options, stop.is_set), stop)
        return item

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        for next_done in asyncio.as_completed(tasks):
            bar.finished(await next_done)
    except BaseException as exc:  # Ctrl-C, this task cancelled, or an error no retry can fix
        stop.set()
        # the tasks end as their runs' streams do; those not started see the stop
        await asyncio.gather(*(drive_async(cancel_steps(item), stop) for item in items))
        await asyncio.gather(*tasks, return_exceptions=True)
        bar.close()
        if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
            error = interrupted(plan, items)
            if isinstance(exc, asyncio.CancelledError):
                exc.frame = error.frame  # type: ignore[attr-defined]
                raise
            raise error from None
        raise
    bar.close()
    return finish(plan, items, raise_on_error)


async def drive_async(steps: Generator[Any, Any, None], stop: asyncio.Event) -> None:
    """Run an item's steps on this event loop."""
    value: Any = None
    error: Exception | None = None
    while (step := advance(steps, value, error)) is not None:
        value, error = None, None
        if isinstance(step, Pause):
            try:
                value = await asyncio.wait_for(stop.wait(), step.seconds)
            except TimeoutError:
                value = False
            continue
        try:
            value = step.fn()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            error = exc
