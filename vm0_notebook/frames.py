"""API models as pandas DataFrames: logs, metrics, and one row per run, agent, volume or version.

    run.logs()                      # logs_frame(client.runs.logs(run.id))
    run.metrics()                   # metrics_frame(client.runs.metrics(run.id))
    client.runs.list().to_pandas()  # records_frame(Run, runs)

Every frame has fixed columns with explicit dtypes (times ``datetime64[ns, UTC]``, durations
``timedelta64[ns]``, statuses and log types as categories, text as ``string``, counts as
``Int64``), so frames from different runs concatenate cleanly and an empty result is an empty
frame with the same columns and dtypes, never an error.

This module imports pandas; it is itself imported only when a frame is asked for.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from . import contract
from .api._parse import parse_time
from .api.models import (
    Agent,
    AgentVersion,
    LogEntry,
    RunDetail,
    RunMetrics,
    StorageInfo,
    StorageVersion,
    are_plain_logs,
)
from .api.run import Run
from .cards import NO_MATH

__all__ = [
    "LOG_COLUMNS",
    "LOG_LEVELS",
    "LOG_TYPES",
    "METRIC_COLUMNS",
    "RUN_STATUSES",
    "logs_frame",
    "metrics_frame",
    "records_frame",
]

#: Log levels, least to most severe; the ``level`` column is this ordered category.
LOG_LEVELS = contract.LOG_LEVELS
#: Log types the API documents; others a server sends are kept as extra categories.
LOG_TYPES = contract.LOG_TYPES
#: Run statuses in lifecycle order; the ``status`` column of a runs frame is this category.
RUN_STATUSES = contract.STATUSES

#: The columns of :func:`logs_frame` with ``columns="all"``, in order; metadata keys beyond
#: these are not kept. ``text`` is what a live view showed for the entry (an agent event
#: rendered as lines), ``message`` the entry as the server sent it.
LOG_COLUMNS = (
    "timestamp", "type", "level", "text", "message",
    "sequence", "event_type",                     # agent entries
    "method", "url", "status", "duration_ms",     # network entries
)  # fmt: skip
# The columns of every logs frame, even where empty.
_ALWAYS = frozenset(LOG_COLUMNS[:5])
#: The columns of :func:`metrics_frame` (indexed by ``timestamp``), NaN where not reported.
METRIC_COLUMNS = (
    "cpu_percent", "memory_used_mb", "memory_total_mb", "disk_used_mb", "disk_total_mb",
    "network_rx_bytes", "network_tx_bytes",
)  # fmt: skip

TIME = pd.DatetimeTZDtype("ns", "UTC")
TEXT = pd.StringDtype()  # pandas' NA-aware string dtype, whatever the default "str" is
LEVEL = pd.CategoricalDtype(LOG_LEVELS, ordered=True)
_LEVEL_ALIASES = {"warning": "warn", "trace": "debug", "fatal": "error", "critical": "error"}

# Above this many entries a log download shows a progress bar: more than a few pages.
PROGRESS_AFTER = 500
# Entries turned into columns at a time: a few pages, few enough to hold as objects at once.
BATCH = 200

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # NaT's integer value in datetime64
_NO_META: dict[str, Any] = {}


# -- logs --------------------------------------------------------------------------------------


class _LogColumns:
    """Accumulates log entries column by column in compact arrays, a batch at a time.

    Only the messages stay Python strings (they are the frame's content); times, levels, types
    and numbers go straight into typed arrays, and repeated short strings share one object, so
    building the frame costs little more memory than the frame itself. Working on a batch of
    entries per column (rather than entry by entry) keeps the per-entry cost to a few list
    comprehensions, which matters for logs of 100,000 entries.
    """

    def __init__(self) -> None:
        self.times = array("q")  # microseconds since the epoch, _NAT when missing
        self.types = array("h")  # codes into self.type_codes
        self.levels = array("b")  # codes into LOG_LEVELS, -1 when missing or unknown
        self.messages: list[str | None] = []
        self.numbers = {k: array("d") for k in ("sequence", "status", "duration_ms")}
        self.texts: dict[str, list[str | None]] = {k: [] for k in ("event_type", "method", "url")}
        self.type_codes = {name: i for i, name in enumerate(LOG_TYPES)}
        self.level_codes = {name: i for i, name in enumerate(LOG_LEVELS)}
        self.shared: dict[str, str] = {}

    def add(self, batch: list[Any]) -> None:
        """Append a batch of log entries (``LogEntry`` objects or the API's JSON objects) to
        the columns; unknown types get their own category."""
        if are_plain_logs(batch):
            # the API's own shape, read as it is: no LogEntry made for each of 100,000 lines
            stamps = [_micros(e.get("timestamp")) for e in batch]
            kinds = [e.get("type") for e in batch]
            levels = [e.get("level") for e in batch]
            messages = [e.get("message", "") for e in batch]
            metas = [e.get("metadata") or _NO_META for e in batch]
        else:
            entries = [LogEntry.from_api(e) if isinstance(e, Mapping) else e for e in batch]
            stamps = [_micros(e.timestamp) for e in entries]
            kinds = [e.type for e in entries]
            levels = [e.level for e in entries]
            messages = [e.message for e in entries]
            metas = [e.metadata if isinstance(e.metadata, dict) else _NO_META for e in entries]
        self.times.extend(stamps)
        kinds = [kind if isinstance(kind, str) else None for kind in kinds]
        type_codes = self.type_codes
        for kind in set(kinds).difference(type_codes):
            if kind is not None:  # a type the API does not document: its own category
                type_codes[kind] = len(type_codes)
        self.types.extend([type_codes.get(kind, -1) for kind in kinds])
        level_codes = self.level_codes
        self.levels.extend([level_codes[lv] if type(lv) is str and lv in level_codes
                            else _level_code(lv) for lv in levels])
        self.messages.extend([m if isinstance(m, str) or m is None
                              else json.dumps(m, separators=(",", ":"), default=str)
                              for m in messages])
        nan = np.nan
        for key, values in self.numbers.items():
            values.extend([nan if (v := meta.get(key)) is None else float(v) if type(v) is int
                           else _number(v) for meta in metas])
        shared = self.shared
        for key, texts in self.texts.items():
            texts.extend([None if (v := meta.get(key)) is None
                          else shared.setdefault(v, v) if type(v) is str
                          else shared.setdefault(str(v), str(v)) for meta in metas])

    def frame(self, drop_empty: bool = False) -> pd.DataFrame:
        """The columns gathered so far as a DataFrame with the ``LOG_COLUMNS`` dtypes;
        ``drop_empty`` leaves out the metadata columns that are empty in every row."""
        micros = np.frombuffer(self.times, dtype=np.int64) if self.times else np.empty(0, np.int64)
        stamps = np.where(micros == _NAT, _NAT, micros * 1000).view("datetime64[ns]")
        types = pd.CategoricalDtype(list(self.type_codes))
        builders: dict[str, Callable[[], Any]] = {
            "timestamp": lambda: pd.DatetimeIndex(stamps).tz_localize("UTC").as_unit("ns"),
            "type": lambda: pd.Categorical.from_codes(_codes(self.types), dtype=types),
            "level": lambda: pd.Categorical.from_codes(_codes(self.levels), dtype=LEVEL),
            "text": lambda: pd.array(
                _shown_texts(self.messages, self.texts["event_type"]), dtype=TEXT),
            "message": lambda: pd.array(self.messages, dtype=TEXT),
            "sequence": lambda: _ints(self.numbers["sequence"]),
            "event_type": lambda: pd.array(self.texts["event_type"], dtype=TEXT),
            "method": lambda: pd.array(self.texts["method"], dtype=TEXT),
            "url": lambda: pd.array(self.texts["url"], dtype=TEXT),
            "status": lambda: _ints(self.numbers["status"]),
            "duration_ms": lambda: pd.array(_floats(self.numbers["duration_ms"]), dtype="Float64"),
        }
        names = list(LOG_COLUMNS)
        if drop_empty and len(self.messages):  # the metadata no entry has: never built
            names = [n for n in names if n in _ALWAYS or self._has_values(n)]
        return plain(pd.DataFrame({name: builders[name]() for name in names}))

    def _has_values(self, name: str) -> bool:
        """Whether any entry has metadata column ``name``."""
        if name in self.texts:
            return any(value is not None for value in self.texts[name])
        return bool(np.isfinite(np.frombuffer(self.numbers[name], dtype=np.float64)).any())


def _shown_texts(messages: list[str | None], event_types: list[str | None]) -> list[str | None]:
    """What a live view showed for each entry: an agent event's rendered lines, else the
    message as it is."""
    from .render import shown_text

    return [message if event_type is None or message is None else shown_text(message)
            for message, event_type in zip(messages, event_types, strict=True)]


def _micros(stamp: Any) -> int:
    """A timestamp (as the API sends it, or a datetime) in microseconds since the epoch,
    ``_NAT`` if there is none."""
    parsed = parse_time(stamp)
    return _NAT if parsed is None else (parsed - _EPOCH) // _US


def _level_code(level: Any) -> int:
    """The code of a level spelled otherwise (``WARNING``, ``fatal``); -1 when unknown."""
    if not isinstance(level, str):
        return -1
    level = level.lower()
    level = _LEVEL_ALIASES.get(level, level)
    return LOG_LEVELS.index(level) if level in LOG_LEVELS else -1


def _number(value: Any) -> float:
    if value is None:
        return np.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _floats(values: array) -> np.ndarray:
    return np.frombuffer(values, dtype=np.float64) if values else np.empty(0, np.float64)


def _ints(values: array) -> pd.api.extensions.ExtensionArray:
    floats = _floats(values)
    whole = np.isnan(floats) | (floats == np.round(floats))
    # a non-integral value where an integer belongs is a server quirk: keep it as missing
    return pd.array(np.where(whole, floats, np.nan), dtype="Int64")


def _codes(values: array) -> np.ndarray:
    return np.asarray(values, dtype=np.int16) if values else np.empty(0, np.int16)


def logs_frame(
    entries: Iterable[LogEntry], *, progress: bool | None = None, columns: str = "default"
) -> pd.DataFrame:
    """Log entries as a DataFrame, one row per entry, in the order given.

    Columns (see :data:`LOG_COLUMNS`): ``timestamp`` (``datetime64[ns, UTC]``), ``type``
    (category: agent, system, network), ``level`` (ordered category debug < info < warn <
    error), ``text`` (what the live view showed: an agent event as the lines it rendered),
    ``message`` (the entry as sent), then the metadata flattened: ``sequence`` and
    ``event_type`` for agent entries, ``method``, ``url``, ``status`` and ``duration_ms`` for
    network entries, NA where an entry has none. By default the metadata columns that are
    empty in every row are left out; ``columns="all"`` keeps every column.

    ``entries`` is consumed lazily, page by page, so a long log never sits in memory twice; a
    progress bar appears once it runs past a few pages (``progress=False`` hides it, ``True``
    shows it from the start).

        df = run.logs(type="agent")
        df[df.level >= "warn"]
    """
    if columns not in ("default", "all"):
        raise ValueError(f'columns must be "default" or "all", not {columns!r}')
    gathered = _LogColumns()
    it = _progress(entries, progress)
    while batch := list(islice(it, BATCH)):
        gathered.add(batch)
    return gathered.frame(drop_empty=columns == "default")


def _progress(entries: Iterable[LogEntry], progress: bool | None) -> Iterator[LogEntry]:
    """Yield ``entries``; past :data:`PROGRESS_AFTER` of them (or at once), with a bar."""
    if progress is False:
        yield from entries
        return
    it = iter(entries)
    count = 0
    if not progress:
        for entry in it:
            yield entry
            count += 1
            if count >= PROGRESS_AFTER:
                break
        else:
            return
    from tqdm.auto import tqdm

    with tqdm(it, initial=count, desc="logs", unit=" entries", leave=False) as bar:
        yield from bar


# -- metrics -----------------------------------------------------------------------------------


def metrics_frame(metrics: RunMetrics) -> pd.DataFrame:
    """A run's resource samples, indexed by ``timestamp`` (UTC), oldest first.

    Columns (see :data:`METRIC_COLUMNS`): ``cpu_percent``, ``memory_used_mb``,
    ``memory_total_mb``, ``disk_used_mb``, ``disk_total_mb``, ``network_rx_bytes``,
    ``network_tx_bytes`` as floats, NaN where the server reports nothing. Both metrics shapes
    of the API give the same frame. The server's summary is in ``df.attrs["summary"]``.

        df = run.metrics()
        df.cpu_percent.max(), df.attrs["summary"]
    """
    points = list(metrics.points)
    index = pd.DatetimeIndex(
        pd.to_datetime([p.timestamp for p in points], utc=True), name="timestamp"
    ).as_unit("ns")
    data = {
        name: np.array([_number(getattr(p, name, None)) for p in points], dtype=np.float64)
        for name in METRIC_COLUMNS
    }
    frame = pd.DataFrame(data, index=index, columns=list(METRIC_COLUMNS))
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    frame.attrs["summary"] = dict(metrics.summary)
    return plain(frame)


# -- one row per record ------------------------------------------------------------------------

# A column of a records frame: its name, how to read it from a model, and its kind.
_Spec = tuple[str, Callable[[Any], Any], str]


def _attr(name: str) -> Callable[[Any], Any]:
    return lambda item: getattr(item, name, None)


def _run_duration(run: Run | RunDetail) -> float | None:
    """Milliseconds: the server's execution time, else completed minus started."""
    if run.execution_time_ms is not None:
        return run.execution_time_ms
    if run.started_at and run.completed_at:
        return (run.completed_at - run.started_at) / timedelta(milliseconds=1)
    return None


def _specs(*columns: str | tuple[str, str], **getters: Callable[[Any], Any]) -> list[_Spec]:
    """Columns as ``name`` (text) or ``(name, kind)``; a getter replaces the plain attribute."""
    out = []
    for column in columns:
        name, kind = (column, "text") if isinstance(column, str) else column
        out.append((name, getters.get(name, _attr(name)), kind))
    return out


_TIMES = ("created_at", "time"), ("updated_at", "time")
_SCHEMAS: dict[type, list[_Spec]] = {
    Run: _specs(
        "id", "agent_name", ("status", "status"), ("created_at", "time"),
        ("started_at", "time"), ("completed_at", "time"), ("duration", "duration"), "prompt",
        "error", "agent_id", "agent_version", "session_id", "checkpoint_id", "artifact_name",
        "artifact_version", ("volumes", "object"),
        duration=_run_duration, volumes=lambda run: dict(run.volumes or {}),
    ),
    Agent: _specs(
        "id", "name", "description", "current_version_id", ("version_number", "int"), *_TIMES,
        version_number=lambda a: a.current_version.version_number if a.current_version else None,
    ),
    AgentVersion: _specs(
        "id", "agent_id", ("version_number", "int"), "message", "created_by",
        ("created_at", "time"),
    ),
    StorageInfo: _specs(
        "id", "name", "current_version_id", ("size", "int"), ("file_count", "int"), *_TIMES,
    ),
    StorageVersion: _specs(
        "id", "storage_id", ("size", "int"), ("file_count", "int"), "message", "created_by",
        ("created_at", "time"),
    ),
}  # fmt: skip
_SCHEMAS[RunDetail] = _SCHEMAS[Run]


def _column(values: list[Any], kind: str) -> Any:
    if kind == "time":
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
    if kind == "duration":
        return pd.to_timedelta([np.nan if v is None else v for v in values], unit="ms").as_unit(
            "ns"
        )
    if kind == "status":
        extra = sorted({v for v in values if v is not None} - set(RUN_STATUSES))
        return pd.Categorical(values, categories=[*RUN_STATUSES, *extra])
    if kind == "int":
        return _ints(array("d", (_number(v) for v in values)))
    if kind == "object":
        return pd.array(values, dtype=object)
    return pd.array([None if v is None else str(v) for v in values], dtype=TEXT)


def records_frame(model: type, items: Iterable[Any]) -> pd.DataFrame:
    """One row per run, agent, agent version, volume, artifact or storage version; newest first.

    ``model`` is the items' class (:class:`Run`, :class:`Agent`, :class:`AgentVersion`,
    :class:`Volume`, :class:`Artifact` or :class:`StorageVersion`); it fixes the columns, so
    an empty listing gives an empty frame with the same columns and dtypes. Times are
    ``datetime64[ns, UTC]``, a run's ``duration`` is a timedelta, its ``status`` a category of
    :data:`RUN_STATUSES`, sizes and counts ``Int64``, ids and text ``string``.

        runs = client.runs.list(status="failed").to_pandas()
        runs.groupby("agent_name").duration.mean()
    """
    specs = next((_SCHEMAS[cls] for cls in getattr(model, "__mro__", ()) if cls in _SCHEMAS), None)
    if specs is None:
        known = ", ".join(sorted(cls.__name__ for cls in _SCHEMAS))
        name = getattr(model, "__name__", model)
        raise TypeError(f"no frame layout for {name!r}; known: {known}")
    rows = list(items)
    data = {name: _column([get(item) for item in rows], kind) for name, get, kind in specs}
    frame = pd.DataFrame(data, columns=[name for name, _, _ in specs])
    order = _newest_first(frame)
    return plain(frame.iloc[order].reset_index(drop=True) if order is not None else frame)


def _newest_first(frame: pd.DataFrame) -> np.ndarray | None:
    """Row order by ``created_at`` descending (then version number), missing times last."""
    if frame.empty or "created_at" not in frame:
        return None
    keys = ["created_at"] + (["version_number"] if "version_number" in frame else [])
    ordered = frame.sort_values(keys, ascending=False, na_position="last", kind="stable")
    return ordered.index.to_numpy()


def runs_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """A runs frame (``records_frame(Run, ...)``) cut to what a reader scans, by run id:
    status, agent, started (UTC), duration as ``3.4 s`` and the prompt's first line."""
    from .cards import format_duration

    started = runs["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    seconds = runs["duration"].dt.total_seconds()
    prompt = runs["prompt"].map(_first_line, na_action="ignore")
    frame = pd.DataFrame(
        {
            "status": runs["status"],
            "agent": runs["agent_name"],
            "started": pd.array(started, dtype=TEXT),
            "duration": pd.array(
                [None if pd.isna(s) else format_duration(s) for s in seconds], dtype=TEXT
            ),
            "prompt": pd.array(prompt, dtype=TEXT),
        }
    )
    frame.index = pd.Index(runs["id"], name="run")
    return plain(frame)


# Characters of a prompt's first line in the runs summary; the full frame has it all.
_PROMPT_CHARS = 60


def _first_line(text: str) -> str:
    lines = text.strip().splitlines() or [""]
    line, more = lines[0], len(lines) > 1
    if len(line) > _PROMPT_CHARS:
        line, more = line[: _PROMPT_CHARS - 1], True
    return line + "…" if more else line


# -- display ------------------------------------------------------------------------------------

# ``frame.attrs`` key of the frames made here: shown without MathJax, since a ``$`` in a prompt
# or a log line is text (pandas keeps attrs through copies, slices and head()).
_PLAIN = "vm0_plain"
# Text reads from the left (the frontends right-align table cells, as for numbers).
_LEFT = ("<style>.vm0-frame table.dataframe td, .vm0-frame table.dataframe th"
         "{text-align:left}</style>")
_shells: set[int] = set()  # the IPython shells whose HTML formatter knows plain frames


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Mark ``frame`` to be shown in a notebook without MathJax typesetting; returns it."""
    frame.attrs[_PLAIN] = True
    ipython = sys.modules.get("IPython")  # not imported: no shell to show it in
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and id(shell) not in _shells:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)
        _shells.add(id(shell))
    return frame


def frame_html(frame: pd.DataFrame) -> str | None:
    """A DataFrame's notebook HTML; a frame made here is wrapped so MathJax leaves it alone
    (any other frame is shown exactly as pandas shows it)."""
    if not frame.attrs.get(_PLAIN):
        return frame._repr_html_()
    with pd.option_context("display.html.use_mathjax", False):
        body = frame._repr_html_()
    return None if body is None else f'<div class="vm0-frame {NO_MATH}">{_LEFT}{body}</div>'
