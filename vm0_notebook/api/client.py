"""``Client`` and ``AsyncClient``: the same API surface, blocking or awaitable.

    import vm0_notebook as vm0
    client = vm0.Client()                     # VM0_API_URL / VM0_API_KEY, else the local server
    run = client.runs.create(agent="echo", prompt="hello").wait()

    async with vm0.AsyncClient() as aclient:
        run = await aclient.runs.create(agent="echo", prompt="hello")
        async for event in run.stream():
            ...

The sync client does blocking I/O with ``httpx.Client`` and never touches an event loop, so it
works the same in a script, under papermill and inside a running Jupyter kernel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import httpx_sse

from ._base import DEFAULT_HEADERS, Again, BaseClient, blame_last_response
from ._ops import Download, Drain, Op, Request, Sleep
from .errors import InvalidResponseError
from .pagination import AsyncPager, Pager

if TYPE_CHECKING:  # pragma: no cover
    from pandas import DataFrame

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")
_CHUNK = 1 << 16


class Client(BaseClient):
    """The blocking VM0 client.

    Args:
        api_key: the bearer token (default ``VM0_API_KEY``); never shown in full anywhere.
        api_url: the server root (default ``VM0_API_URL``, else ``https://api.vm0.ai`` when a
            key is set, else the embedded local server, started on first use). A server that
            does not speak the VM0 API v1 there (the VM0 cloud today) raises
            :class:`~vm0_notebook.api.errors.APINotServedError` on the first request.
        timeout: seconds per request.
        max_attempts: tries per request where a retry is safe (3).
        retry_backoff: first backoff in seconds, doubled per retry, with jitter.
        stream_idle_timeout: seconds without a byte after which an event stream reconnects.
        cache_dir: where downloaded versions are cached (default ``VM0_CACHE_DIR`` or
            ``~/.cache/vm0-notebook``).

    The key shows only masked (``client.masked_key``); code that must hide it in output
    masks each of ``client.secret_values()``.
    """

    is_sync = True

    def __init__(self, api_key: str | None = None, api_url: str | None = None, **options: Any):
        super().__init__(api_key, api_url, **options)
        self._http = httpx.Client(timeout=self.timeout, follow_redirects=False,
                                  headers=DEFAULT_HEADERS)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- the I/O of operations ----------------------------------------------------------------

    def drive(self, op: Op[T]) -> T:
        """Run an operation to its end, doing the I/O it yields."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value
            except InvalidResponseError as exc:
                blame_last_response(exc)
                raise
            value, error = None, None
            try:
                value = self._perform(step)
            except Exception as exc:
                error = exc

    def drive_one(self, request: Request) -> Any:
        """Send one request (with retries) and return its JSON; pagers fetch each page this way."""
        return self._send(request)

    def _perform(self, step: Any) -> Any:
        if isinstance(step, Request):
            return self._send(step)
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Download):
            return self._download(step)
        if isinstance(step, Drain):
            for _ in step.events:
                pass
            return None
        if isinstance(step, list):
            if len(step) <= 1:
                return [self._perform(s) for s in step]
            with ThreadPoolExecutor(min(8, len(step))) as pool:
                return list(pool.map(self._perform, step))
        raise TypeError(f"unknown operation step {step!r}")

    def _retrying(self, request: Request, attempt: Callable[[int], Any]) -> Any:
        """The sync retry loop: ``attempt(n)`` until it returns anything but :class:`Again`;
        the policy (which errors and statuses, how long to wait) is ``self.retry``."""
        n = 0
        while True:
            n += 1
            failure: httpx.RequestError | None = None
            try:
                outcome = attempt(n)
            except httpx.RequestError as exc:
                failure = exc
            if failure is not None:  # raised out here, so no error chains to httpx's
                wait = self.retry.next_delay(request, n, error=failure)
                if wait is None:
                    raise self.request_error(request, failure)
            elif isinstance(outcome, Again):
                wait = outcome.seconds
            else:
                return outcome
            time.sleep(wait)

    def _send(self, request: Request) -> Any:
        kwargs = self.build(request)

        def attempt(n: int) -> Any:
            if request.file is not None:
                kwargs["content"] = _file_chunks(request)
            response = self._http.request(**kwargs)
            return self.retry.again(request, n, response) or self.handle(request, response)

        return self._retrying(request, attempt)

    def _download(self, step: Download) -> int:
        request = Request("GET", url=step.url)
        url = self.url_for(request)

        def attempt(n: int) -> Any:
            with self._http.stream("GET", url, follow_redirects=True,
                                   headers=self.headers_for(url)) as resp:
                again = self.retry.again(request, n, resp)
                if again is not None:
                    return again
                if resp.status_code >= 400:
                    resp.read()
                    raise self.status_error(resp)
                with _Sink(step) as sink:
                    for chunk in resp.iter_bytes(_CHUNK):
                        sink.write(chunk)
                return sink.total

        return self._retrying(request, attempt)

    @contextmanager
    def sse(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Iterator[Any]:
        """One event-stream connection (used by ``runs.events``); errors as for requests."""
        request = Request("GET", path, params=params, headers=headers)
        kwargs = self.build(request)
        timeout = httpx.Timeout(self.timeout, read=self.stream_idle_timeout)
        with httpx_sse.connect_sse(self._http, timeout=timeout, **kwargs) as source:
            if source.response.status_code >= 300:
                source.response.read()
                raise self.status_error(source.response)
            self.check_stream(source.response)
            yield source

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``; event streams wait this way before reconnecting."""
        time.sleep(seconds)

    # -- helpers for models -------------------------------------------------------------------

    def pager(self, *args: Any, **kwargs: Any) -> Pager[Any]:
        """A :class:`Pager` over this client, for the list operations of resources."""
        return Pager(self, *args, **kwargs)

    def await_or_call(self, value: Any, fn: Callable[[Any], T]) -> T:
        """``fn(value)``: the sync half of code shared with :class:`AsyncClient`."""
        return fn(value)

    # -- many runs ----------------------------------------------------------------------------

    def map(self, agent: str, prompts: Any, concurrency: int = 8, template: str | None = None,
            raise_on_error: bool = False, progress: bool = True, **run_options: Any
            ) -> DataFrame:
        """Run ``agent`` once per input, ``concurrency`` at a time; one row per input, in order.

            df = client.map("echo", ["a", "b", "c"])
            df = client.map("echo", penguins, template="Describe {species} on {island}")

        ``prompts``: a list, a Series, or a DataFrame (each row filled into ``template``, its
        columns kept). Columns added: prompt, run_id, status, output, error,
        execution_time_ms, artifact_version, usage. Shows a progress bar (``progress=False``
        hides it); rate limits are waited out; Ctrl-C cancels the runs and raises
        ``MapInterrupted`` with the frame so far; ``raise_on_error=True`` raises ``MapError``
        if any run did not complete. Run options (``variables``, ``volumes``...) as for
        ``runs.create``.
        """
        from .fanout import map_sync

        return map_sync(self, agent, prompts, concurrency, template, raise_on_error, progress,
                        **run_options)


class AsyncClient(BaseClient):
    """The awaitable VM0 client: the same surface as :class:`Client`.

        async with AsyncClient() as client:
            run = await client.runs.create(agent="echo", prompt="hi")
            await run.wait()
            async for agent in client.agents.list():
                print(agent.name)
    """

    is_sync = False

    def __init__(self, api_key: str | None = None, api_url: str | None = None, **options: Any):
        super().__init__(api_key, api_url, **options)
        self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False,
                                       headers=DEFAULT_HEADERS)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _ensure_resolved(self) -> None:
        # finding or starting the local server blocks: keep it off the event loop
        if not self._resolved:
            await asyncio.to_thread(self._resolve)

    # -- the I/O of operations ----------------------------------------------------------------

    async def drive(self, op: Op[T]) -> T:  # type: ignore[override]
        """Run an operation to its end, awaiting the I/O it yields."""
        await self._ensure_resolved()
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value
            except InvalidResponseError as exc:
                blame_last_response(exc)
                raise
            value, error = None, None
            try:
                value = await self._perform(step)
            except Exception as exc:
                error = exc

    async def drive_one(self, request: Request) -> Any:
        """Send one request (with retries) and return its JSON; pagers fetch each page this way."""
        await self._ensure_resolved()
        return await self._send(request)

    async def _perform(self, step: Any) -> Any:
        if isinstance(step, Request):
            return await self._send(step)
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Download):
            return await self._download(step)
        if isinstance(step, Drain):
            async for _ in step.events:
                pass
            return None
        if isinstance(step, list):
            limit = asyncio.Semaphore(8)

            async def bounded(s: Any) -> Any:
                async with limit:
                    return await self._perform(s)

            return list(await asyncio.gather(*(bounded(s) for s in step)))
        raise TypeError(f"unknown operation step {step!r}")

    async def _retrying(self, request: Request, attempt: Callable[[int], Awaitable[Any]]) -> Any:
        """The async retry loop: as :meth:`Client._retrying`, awaiting each attempt."""
        n = 0
        while True:
            n += 1
            failure: httpx.RequestError | None = None
            try:
                outcome = await attempt(n)
            except httpx.RequestError as exc:
                failure = exc
            if failure is not None:  # raised out here, so no error chains to httpx's
                wait = self.retry.next_delay(request, n, error=failure)
                if wait is None:
                    raise self.request_error(request, failure)
            elif isinstance(outcome, Again):
                wait = outcome.seconds
            else:
                return outcome
            await asyncio.sleep(wait)

    async def _send(self, request: Request) -> Any:
        kwargs = self.build(request)

        async def attempt(n: int) -> Any:
            if request.file is not None:
                kwargs["content"] = _afile_chunks(request)
            response = await self._http.request(**kwargs)
            return self.retry.again(request, n, response) or self.handle(request, response)

        return await self._retrying(request, attempt)

    async def _download(self, step: Download) -> int:
        request = Request("GET", url=step.url)
        url = self.url_for(request)

        async def attempt(n: int) -> Any:
            async with self._http.stream("GET", url, follow_redirects=True,
                                         headers=self.headers_for(url)) as resp:
                again = self.retry.again(request, n, resp)
                if again is not None:
                    return again
                if resp.status_code >= 400:
                    await resp.aread()
                    raise self.status_error(resp)
                with _Sink(step) as sink:
                    async for chunk in resp.aiter_bytes(_CHUNK):
                        sink.write(chunk)
                return sink.total

        return await self._retrying(request, attempt)

    @asynccontextmanager
    async def sse(
        self, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[Any]:
        """One event-stream connection (used by ``runs.events``); errors as for requests."""
        await self._ensure_resolved()
        kwargs = self.build(Request("GET", path, params=params, headers=headers))
        timeout = httpx.Timeout(self.timeout, read=self.stream_idle_timeout)
        async with httpx_sse.aconnect_sse(self._http, timeout=timeout, **kwargs) as source:
            if source.response.status_code >= 300:
                await source.response.aread()
                raise self.status_error(source.response)
            self.check_stream(source.response)
            yield source

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the loop; event streams wait so before reconnecting."""
        await asyncio.sleep(seconds)

    # -- helpers for models -------------------------------------------------------------------

    def pager(self, *args: Any, **kwargs: Any) -> AsyncPager[Any]:
        """An :class:`AsyncPager` over this client, for the list operations of resources."""
        return AsyncPager(self, *args, **kwargs)

    async def await_or_call(self, value: Any, fn: Callable[[Any], T]) -> T:
        """``fn`` of the awaited ``value`` (an async pager is read to a list first)."""
        if isinstance(value, AsyncPager):
            return fn(await value.to_list())
        return fn(await value)

    async def map(self, agent: str, prompts: Any, concurrency: int = 8,
                  template: str | None = None, raise_on_error: bool = False,
                  progress: bool = True, **run_options: Any) -> DataFrame:
        """Run ``agent`` once per input, ``concurrency`` at a time, as tasks on this loop;
        the same arguments and frame as :meth:`Client.map`.

            df = await aclient.map("echo", ["a", "b", "c"])
        """
        from .fanout import map_async

        return await map_async(self, agent, prompts, concurrency, template, raise_on_error,
                               progress, **run_options)


def _file_chunks(request: Request) -> Iterator[bytes]:
    assert request.file is not None
    with open(request.file, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            if request.progress:
                request.progress(len(chunk))
            yield chunk


async def _afile_chunks(request: Request) -> AsyncIterator[bytes]:
    for chunk in _file_chunks(request):
        yield chunk


class _Sink:
    """The file a download is written to, with its byte count and progress."""

    def __init__(self, step: Download) -> None:
        self.step = step
        self.total = 0

    def __enter__(self) -> _Sink:
        self.step.dest.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.step.dest, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        """Write one chunk, count it, and report it to the download's progress callback."""
        size = self.step.size
        if size is not None and self.total + len(chunk) > size:
            raise InvalidResponseError(
                f"The server sent more than {size} bytes for {self.step.what}, but its listing"
                f" says {size}; the download was stopped and nothing was cached"
            )
        self._fh.write(chunk)
        self.total += len(chunk)
        if self.step.progress:
            self.step.progress(len(chunk))

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

