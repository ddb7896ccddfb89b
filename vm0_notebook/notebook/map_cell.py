"""``%%vm0 map``: one run per row (or item) of a notebook variable, the cell body as template.

    %%vm0 map echo --over penguins --concurrency 8 -o described
    Describe a {species} penguin from {island}.

The body is filled per row with the row's columns (``{}`` or ``{item}`` for a list or Series);
``{{`` and ``}}`` stay literal braces. The cell shows a progress bar, a one-line summary and the
results: the whole frame as the cell's value, or with ``-o OUT`` the frame bound to ``OUT`` and
a compact table (status, short output and error, run id) shown. A run that did not complete
is a row; only ``--strict`` fails the cell for it. Ctrl-C cancels the runs still going and
binds what finished to ``OUT``.
"""

from __future__ import annotations

from typing import Any

from .errors import MagicError, RunFailed

_SHOWN = 60  # characters of an output or error in the compact table


def run_map(magics: Any, args: Any, cell: str | None) -> Any:
    """Run ``%%vm0 map`` (see the module docstring) for the magics of a kernel."""
    template = (cell or "").strip("\n")
    if not template.strip():
        raise MagicError("write the prompt template in the cell body below %%vm0 map AGENT "
                         "--over VAR, such as: Describe {species} on {island}")
    namespace = magics.shell.user_ns
    if args.over not in namespace:
        raise MagicError(f"--over {args.over}: there is no variable {args.over!r} in the notebook")
    args.session = args.checkpoint = None  # a map starts each run afresh
    options = magics._run_request(args, args.agent, template)
    agent = options.pop("agent")
    options.pop("prompt")

    from ..api.errors import MapInterrupted

    client = magics.client
    try:
        frame = client.map(agent, namespace[args.over], concurrency=args.concurrency,
                           template=template, **options)
    except MapInterrupted as exc:
        where = _bind(namespace, args.out, exc.frame)
        raise RunFailed(magics.masker.mask(f"interrupted: {_tally(exc.frame)}; the runs still "
                                           f"going were cancelled. {where}")) from None
    where = _bind(namespace, args.out, frame)
    print(magics.masker.mask(f"vm0 map {agent}: {_tally(frame)}. {where}"))
    shown = compact(frame) if args.out else frame
    failed = frame[frame["status"] != "completed"]
    if args.strict and len(failed):
        from IPython.display import display

        display(magics.masker.mask_frame(shown))
        first = ", ".join(f"{index} {status}" for index, status in
                          failed["status"].head(5).items())
        raise RunFailed(magics.masker.mask(
            f"--strict: {len(failed)} of {len(frame)} runs did not complete ({first}"
            + (", ..." if len(failed) > 5 else "") + ")"
        ))
    return shown


def _bind(namespace: dict[str, Any], name: str | None, frame: Any) -> str:
    if not name:
        return "The frame is the cell's value (use -o NAME to keep it)."
    namespace[name] = frame
    return f"The frame is in {name}."


def _tally(frame: Any) -> str:
    """``30 runs: 29 completed, 1 failed``."""
    counts = frame["status"].value_counts()
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"{len(frame)} run{'s' if len(frame) != 1 else ''}" + (f": {parts}" if parts else "")


def compact(frame: Any) -> Any:
    """The frame to show: inputs, status, output and error cut to one short line, run id."""
    from ..api.fanout import RESULT_COLUMNS

    inputs = [c for c in frame.columns if c not in RESULT_COLUMNS]
    out = frame[[*inputs, "status", "output", "error", "run_id"]].copy()
    for column in ("output", "error"):
        out[column] = out[column].map(_short, na_action="ignore")
    return out


def _short(text: Any) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= _SHOWN else line[: _SHOWN - 1] + "…"
