"""The ``Run`` handle: a run's latest detail, what its events showed, and the calls that follow it.

Reading an attribute never talks to the server: ``run.status``, ``run.output`` and the rest
are what the handle has seen so far. The methods do the I/O (``refresh``, ``wait``,
``stream``, ``cancel``, ``fetch_output``, ``follow_up``, ``resume``, ``logs``, ``metrics``,
``artifact``), through the client that made the run; on an ``AsyncClient`` they are awaitable
and ``stream()`` is an async iterator.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ..contract import (
    FINAL_STATUSES,
    OUTPUT_TRUNCATED,
    RESULT_TRUNCATED,
    SUCCESS_STATUS,
    event_text,
)
from ._ops import Drain, Op, Request, Sleep, endpoint
from .errors import InvalidRequestError, RunFailedError, WaitTimeoutError
from .models import Event, RunDetail
from .usage import usage_from_result

if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime

    from matplotlib.figure import Figure
    from pandas import DataFrame

__all__ = ["Run"]

# the detail's fields a Run shows as its own attributes (``run.status``, ``run.prompt``...)
_DETAIL_FIELDS = frozenset(f.name for f in dataclasses.fields(RunDetail)) - {
    "output", "output_truncated"}


class Run:
    """A run of an agent, and a handle to follow it.

        run = client.runs.create(agent="echo", prompt="hello")
        run.wait()                 # blocks until completed/failed/timeout/cancelled
        print(run.status, run.output)
        run.logs()                 # DataFrame

    The server's view of the run is ``run.detail`` (a :class:`RunDetail`), whose fields read
    as the run's own (``run.id``, ``run.status``, ``run.agent_name``...). ``refresh``, ``wait``
    and ``cancel`` update this object in place and return it; ``stream()`` keeps ``status``,
    ``output`` and ``usage`` current as events arrive.
    """

    if TYPE_CHECKING:  # the detail's fields, read through __getattr__
        id: str
        status: str
        agent_id: str | None
        agent_name: str | None
        prompt: str | None
        created_at: datetime | None
        started_at: datetime | None
        completed_at: datetime | None
        error: str | None
        execution_time_ms: int | None
        checkpoint_id: str | None
        session_id: str | None
        artifact_name: str | None
        artifact_version: str | None
        volumes: dict[str, str]
        agent_version: str | None
        sandbox: str | None

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by its detail

    def __init__(self, detail: RunDetail, client: Any = None) -> None:
        self.detail = detail
        self._client = client
        #: The run's text: the agent's own ``result`` when it reports one (Claude Code does),
        #: else the whole text of its output events (each ``assistant`` event's text blocks,
        #: one per line), rebuilt here: the server sends that text once, in the events, and
        #: its ``result``, ``complete`` and run detail carry only the last lines. Known from
        #: the detail (which may hold only that tail, after a note saying so), and whole once
        #: ``wait()``, ``stream()`` or ``fetch_output()`` read the events.
        self.output: str | None = detail.output
        self._partial = detail.output_truncated  # ``output`` is only the detail's tail
        self._texts: list[str] = []  # the assistant texts of the stream being read
        self._rebuild = False  # the stream's result was a tail: ``output`` is ``_texts``
        #: What the agent's ``result`` event reported, once seen (None until then): a dict of
        #: ``duration_ms``, ``num_turns``, ``input_tokens``, ``output_tokens``,
        #: ``cache_read_input_tokens``, ``cache_creation_input_tokens``, ``total_cost_usd`` and
        #: ``models`` (per model); see :func:`vm0_notebook.api.usage.usage_from_result`.
        self.usage: dict[str, Any] | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], client: Any = None) -> Run:
        """A handle on the run described by one run (detail) object of the API."""
        return cls(RunDetail.from_api(data), client)

    def __getattr__(self, name: str) -> Any:
        # only for names not found on the handle itself: the detail's fields
        if name in _DETAIL_FIELDS:
            return getattr(self.__dict__["detail"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Run):
            return NotImplemented
        return self.detail == other.detail

    def __repr__(self) -> str:
        return "Run" + repr(self.detail)[len("RunDetail"):]

    # -- state --------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once the status is final (completed, failed, timeout or cancelled)."""
        return self.detail.status in FINAL_STATUSES

    @property
    def ok(self) -> bool:
        """True when the run completed successfully."""
        return self.detail.status == SUCCESS_STATUS

    def raise_for_status(self) -> Self:
        """Raise :class:`RunFailedError` if the run ended failed, timeout or cancelled."""
        if self.finished and not self.ok:
            detail = f": {self.error}" if self.error else ""
            hint = "" if self.status == "cancelled" else "; run.logs() has the details"
            raise RunFailedError(f"Run {self.id} {self.status}{detail}{hint}", run=self)
        return self

    def _update(self, detail: RunDetail) -> Self:
        """Take the server's newer detail; an output seen before stays when it has none, and a
        whole one stays when the detail has only the tail."""
        self.detail = detail
        if detail.output is not None and (
            not detail.output_truncated or self.output is None or self._partial
        ):
            self.output = detail.output
            self._partial = detail.output_truncated
        return self

    def _change(self, **values: Any) -> None:
        self.detail = dataclasses.replace(self.detail, **values)

    def _observe(self, event: Event) -> None:
        """Called for each streamed event: keeps status, output and usage current."""
        if event.event == "output":  # the hot path: once per event
            kind = event.type
            if kind == "assistant":
                text = event_text(event.payload)
                if text is not None:
                    self._texts.append(text)
            elif kind == "result":
                payload = event.payload
                text = payload.get("result")
                if payload.get(RESULT_TRUNCATED) is True:  # only the tail: rebuild the whole
                    self._rebuild = True
                    self._set_output("\n".join(self._texts))
                elif isinstance(text, str):
                    self._set_output(text)
                self.usage = usage_from_result(payload)
        elif event.event == "status" and event.status:
            self._change(status=event.status)
        elif event.event == "complete":
            if event.status:
                self._change(status=event.status)
            data = event.data
            if self._rebuild or (self._texts and (self.output is None or self._partial)):
                self._set_output("\n".join(self._texts))  # no result, or only its tail
            elif isinstance(data.get("output"), str) and (self.output is None or self._partial):
                self.output = data["output"]
                self._partial = data.get(OUTPUT_TRUNCATED) is True
            if data.get("error") and not self.error:
                self._change(error=data["error"])
            # A finished run with no text has an empty output, so it is not fetched again.
            if self.output is None:
                self.output = ""

    def _set_output(self, text: str) -> None:
        self.output, self._partial = text, False

    # -- talking to the server ----------------------------------------------------------------

    def _refresh_op(self) -> Op[Run]:
        data = yield Request("GET", f"/runs/{self.id}")
        return self._update(RunDetail.from_api(data))

    @endpoint
    def refresh(self) -> Op[Run]:
        """Fetch the current state from the server (in place) and return the run."""
        return (yield from self._refresh_op())

    @endpoint
    def wait(self, timeout: float | None = None, poll: float = 0.1) -> Op[Run]:
        """Block until the run is finished and return it (whatever its final status), its
        ``output`` known (read from its events if the server's detail lacks it).

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds; the run keeps going.

            run.wait(timeout=60).raise_for_status()
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        while True:
            yield from self._refresh_op()
            if self.finished:
                if self.output is None or self._partial:
                    yield Drain(self.stream())
                return self
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"Run {self.id} still {self.status} after {timeout:g}s; it keeps going:"
                    " wait again, or run.cancel() it", run=self
                )
            pause = delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0))
            yield Sleep(pause)
            delay = min(delay * 1.5, 1.0)

    def _cancel_op(self) -> Op[Run]:
        try:
            data = yield Request("POST", f"/runs/{self.id}/cancel", retry=True)
        except InvalidRequestError as exc:
            # a retried cancel whose first attempt went through answers invalid_state
            if exc.code != "invalid_state":
                raise
            yield from self._refresh_op()
            if self.status != "cancelled":
                raise
            return self
        return self._update(RunDetail.from_api(data))

    @endpoint
    def cancel(self) -> Op[Run]:
        """Cancel the run if it is pending or running; returns it with status ``cancelled``."""
        return (yield from self._cancel_op())

    @endpoint
    def fetch_output(self) -> Op[str | None]:
        """The output, reading the run's events to their end once if it is not known yet, or
        known only as the detail's tail (so on a run still going, this waits for it to finish)."""
        if self.output is None or self._partial:
            yield Drain(self.stream())
        return self.output

    def stream(self) -> Iterator[Event]:
        """Iterate over the run's events from the start, live, until ``complete``.

        Resumes by itself after a dropped connection; updates ``status``, ``output`` and
        ``usage``.

            for event in run.stream():
                print(event.event, event.data)
        """
        self._texts, self._rebuild = [], False  # a stream reads the run from its start
        return self._client.runs.events(self.id, _observer=self._observe)

    def _start_from_op(self, key: str, missing: str, prompt: str, options: Any) -> Op[Run]:
        """A new run from this run's ``session_id`` or ``checkpoint_id`` (refreshed if unset),
        with the secrets this run was created with in this process unless ``secrets=`` is
        given (a follow-up keeps its model key)."""
        from . import _run_secrets

        if "secrets" not in options:
            options = {**options, "secrets": _run_secrets.recall(self.id)}
        if not getattr(self, key):
            yield from self._refresh_op()
        value = getattr(self, key)
        if not value:
            raise InvalidRequestError(
                f"Run {self.id} has {missing.format(status=self.status)}", param=key,
                code="invalid_state",
            )
        return (yield from self._client.runs._create_op(prompt=prompt, **{key: value}, **options))

    @endpoint
    def follow_up(self, prompt: str, **options: Any) -> Op[Run]:
        """Start a new run that continues this run's session, with this run's secrets (held in
        this process's memory only) unless ``secrets=`` is given.

            second = run.follow_up("Now plot it").wait()
        """
        return (yield from self._start_from_op(
            "session_id", "no session yet (status {status}); wait for it first", prompt, options
        ))

    @endpoint
    def resume(self, prompt: str, **options: Any) -> Op[Run]:
        """Start a new run from this run's checkpoint (its state when it finished), with this
        run's secrets unless ``secrets=`` is given."""
        return (yield from self._start_from_op(
            "checkpoint_id", "no checkpoint (status {status}); only finished runs do", prompt,
            options,
        ))

    def logs(self, columns: str = "default", **filters: Any) -> DataFrame:
        """The run's logs as a DataFrame; filters as ``client.runs.logs`` (type, level, ...).

        Columns empty in every row are left out unless ``columns="all"``."""
        from .. import frames

        return self._client.await_or_call(
            self._client.runs.logs(self.id, **filters).as_json(),
            lambda entries: frames.logs_frame(entries, columns=columns),
        )

    def metrics(self) -> DataFrame:
        """The run's resource samples as a DataFrame (cpu, memory, network, disk)."""
        from .. import frames

        return self._client.await_or_call(self._client.runs.metrics(self.id), frames.metrics_frame)

    def plot_metrics(self) -> Figure:
        """A matplotlib figure of the run's CPU and memory over time."""
        from .. import plots

        return plots.plot_metrics(self)

    def artifact(self, to: str | Path | None = None, overwrite: bool = False) -> Path:
        """Download the artifact version this run produced and return its local folder.

        As ``client.artifacts.mount``: the read-only cached folder, or with ``to`` a writable
        copy (``overwrite=True`` to replace what a non-empty ``to`` holds).
        """
        if not self.artifact_name:
            raise InvalidRequestError(
                f"Run {self.id} has no artifact (start it with artifact_name=...)",
                param="artifact_name",
            )
        return self._client.artifacts.mount(
            self.artifact_name, version=self.artifact_version or "latest", to=to,
            overwrite=overwrite,
        )

    # -- display ------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from .. import cards

        return cards.run_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        from .. import cards

        printer.text(cards.run_text(self))

    def __str__(self) -> str:
        from .. import cards

        return cards.run_text(self)
