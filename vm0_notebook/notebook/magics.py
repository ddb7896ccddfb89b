"""``%vm0`` and ``%%vm0``: run agents from cells and look at what they did.

    %load_ext vm0_notebook

    %%vm0 run echo -o run --var MODE=fast
    Summarise {dataset_name}.

    %vm0 runs --status failed
    %vm0 logs run_0123abcd...

``%vm0?`` shows every command and option. Display options are traitlets, so
``%config VM0Magics.tail_lines = 500`` keeps more lines on screen.

This module stays light to import: the client, pandas and matplotlib load when a command needs
them, so ``%load_ext vm0_notebook`` costs almost nothing.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Float, Int
from traitlets.config import Configurable

from ..api.errors import FolderNotEmptyError, MagicError, RunFailed
from .args import check_env_name, fill, filled_line, parse_pairs, parse_ref, split_line
from .masking import SecretMasker

_RUN_CLASS = ("vm0_notebook.api.run", "Run")


def _parse(command: Callable[..., Any], words: list[str]) -> Any:
    # magic_arguments' own splitting keeps quotes in the words; ours removes them like a shell
    # (intermixed: the one-line prompt may come after options)
    return command.parser.parse_intermixed_args(words)  # type: ignore[attr-defined]


def _noop_publish(bundle: dict[str, str], display_id: str, update: bool) -> None:
    """The publisher of ``--quiet`` runs: the view is kept but never drawn."""


def _run_options(method: Callable[..., Any]) -> Callable[..., Any]:
    """The options of what a run is given, shared by ``%%vm0 run`` and ``%%vm0 map``."""
    for option in reversed([  # as if written one above the other, top first
        argument("--var", action="append", metavar="K=V", help="a variable for the run"
                 " (repeatable)"),
        argument("--secret", action="append", metavar="NAME", help="a secret, read from the"
                 " environment variable NAME or asked for (repeatable)"),
        argument("--volume", action="append", metavar="NAME[@VER]",
                 help="mount a volume (repeatable)"),
        argument("--artifact", metavar="NAME[@VER]", help="the artifact the run writes to"),
        argument("--agent-version", metavar="VER", help="latest, v<N> or a version id"),
    ]):
        method = option(method)
    return method


@magics_class
class VM0Magics(Magics, Configurable):
    """The ``%vm0`` line magic and ``%%vm0`` cell magic."""

    tail_lines = Int(
        100, config=True, help="Lines of a run's output the live view keeps on screen."
    )
    max_updates_per_second = Float(
        10.0, config=True, help="Most redraws of a live view per second, whatever the event rate."
    )

    def __init__(self, shell: Any) -> None:
        super().__init__(shell=shell, config=shell.config)
        self.masker = SecretMasker()
        self.masker.add(os.environ.get("VM0_API_KEY"))
        self._client: Any = None
        #: The server's sandbox as ``/health`` said (None until asked, or where it does not say).
        self.server_sandbox: str | None = None
        self._sandbox_checked = False
        self.shell.configurables.append(self)

    # -- connection ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``vm0_notebook.Client`` of this kernel, created (and announced) on first use."""
        return self._connect(announce=True)

    def _connect(self, *, announce: bool) -> Any:
        """The client, created on first use; ``announce`` says once where it is connected."""
        if self._client is None:
            from ..api.client import Client

            try:
                client = Client()
                where = describe_connection(client)  # may start the local server
            except Exception as exc:  # a bad VM0_API_URL, a local server that cannot start
                # one line: a local server's start failure goes on with its log's tail
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise MagicError(f"cannot connect: {self.masker.mask(first)}") from None
            for value in client.secret_values():  # the API key: masked in all shown here
                self.masker.add(value)
            if announce:
                print(f"vm0: connected to {where}")
            self._client = client
        return self._client

    def _check_sandbox(self, info: Any = None) -> None:
        """Say once per kernel (and server) when its agents run unsandboxed; ``info``: what
        ``client.server.info()`` already said, else it is asked."""
        if self._sandbox_checked:
            return
        from .server import sandbox_note

        if info is None:
            info = self._connect(announce=True).server.info()
        self._sandbox_checked = True
        self.server_sandbox = info.sandbox
        note = sandbox_note(info)
        if note:
            print(self.masker.mask(note))

    # -- the magic ----------------------------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    def vm0(self, line: str, cell: str | None = None) -> Any:
        """Dispatch ``%vm0 COMMAND ...`` (or ``%%vm0 run``) to its command (help set below)."""
        words = split_line(line)
        if not words:
            raise MagicError("give a command: %vm0 run, attach, runs, logs... (see %vm0?)")
        name, rest = words[0], words[1:]
        command = _COMMANDS.get(name)
        if command is None:
            raise MagicError(f"unknown command {name!r}; the commands are: {', '.join(_COMMANDS)}")
        if cell is not None and name not in ("run", "map"):
            raise MagicError(f"%%vm0 {name} takes no cell body; use %vm0 {name} on one line")
        if name != "run" and "--raw" not in rest:  # run fills its options once parsed
            rest = [fill(word, self.shell.user_ns) for word in rest]
        try:
            args = _parse(command, rest)
        except UsageError as exc:  # from argparse: unknown option, missing argument...
            raise MagicError(self.masker.mask(f"{exc}; see %vm0?")) from None
        from ..api.errors import VM0Error

        try:
            result = command(self, args, cell)
        except (MagicError, RunFailed):
            raise  # already short, masked and meant for the cell
        except VM0Error as exc:
            raise MagicError(self.masker.mask(str(exc))) from None
        if type(result).__name__ == "DataFrame":  # runs, logs, metrics, agents... listings
            result = self.masker.mask_frame(result)
        return result

    # -- run and attach -----------------------------------------------------------------------

    @magic_arguments("%vm0 run")
    @argument(
        "agent", nargs="?", metavar="AGENT",
        help="agent name (optional with --session or --checkpoint)",
    )
    @argument(
        "prompt", nargs="*", metavar="PROMPT",
        help='the prompt, in the one-line form %%vm0 run AGENT "..."',
    )
    @argument("-o", "--output", dest="out", metavar="VAR", help="also bind the Run to VAR")
    @_run_options
    @argument("--session", metavar="ID", help="continue this session")
    @argument("--checkpoint", metavar="ID", help="resume from this checkpoint")
    @argument("--timeout", type=float, metavar="S", help="stop following after S seconds")
    @argument("--no-wait", action="store_true", help="start the run and return at once")
    @argument("--quiet", action="store_true", help="no live output, only the result")
    @argument(
        "--on-interrupt", choices=("cancel", "detach"), default="cancel",
        help="on Ctrl-C (or --timeout): cancel the run (default) or leave it running",
    )
    @argument(
        "--fill", action="store_true",
        help="fill {expression} in the prompt from the notebook's variables, whatever the agent",
    )
    @argument(
        "--raw", action="store_true",
        help="send the prompt and the line exactly as written: no {expression} filling at all",
    )
    def _run(self, args: Any, cell: str | None) -> Any:
        """Run an agent with the cell body as its prompt and show its output live.

        The prompt is sent as written to agents whose prompt is code (the built-in python and
        shell: their config says "prompt": "code"); for agents whose prompt is prose, such as
        echo and Claude Code, each {expression} in it is filled in from the notebook's variables
        ({{ and }} stay literal braces) and the cell says what was filled. --fill fills in any
        prompt, --raw none. {expression} in the options of the line is always filled in
        (unless --raw). The cell's value is the Run; a run that fails, times out or is
        cancelled fails the cell (after binding -o VAR).
        """
        if args.fill and args.raw:
            raise MagicError("give --fill or --raw, not both")
        agent, prompt = args.agent, " ".join(args.prompt)
        if cell is not None:
            if prompt:
                raise MagicError("give the prompt either in the cell body or on the line, not both")
            prompt = cell.strip("\n")
        elif not prompt and agent and (args.session or args.checkpoint):
            agent, prompt = None, agent  # %vm0 run --session ID "prompt"
        if not args.raw:
            agent = agent and fill(agent, self.shell.user_ns)
            _fill_options(args, self.shell.user_ns)
        if prompt.strip() and self._fills(args, agent):
            filled: list[tuple[str, Any]] = []
            prompt = fill(prompt, self.shell.user_ns, filled)
            if filled:
                print(self.masker.mask(filled_line(filled)))
        if not agent and not (args.session or args.checkpoint):
            raise MagicError("name the agent: %%vm0 run AGENT (or give --session/--checkpoint)")
        if not prompt.strip():
            raise MagicError("the prompt is empty: write it in the cell body below %%vm0 run")
        if args.timeout is not None and args.timeout <= 0:
            raise MagicError("--timeout must be a positive number of seconds")
        request = self._with_model(self._run_request(args, agent, prompt))
        if request is None:
            if args.out:
                self.shell.user_ns[args.out] = None
            return None
        self._check_sandbox()
        run = self.client.runs.create(**request)
        if args.out:
            self.shell.user_ns[args.out] = run
        if args.no_wait:
            print(f"{run.id} started ({run.status}); follow it with: %vm0 attach {run.id}")
            return run
        return self._follow(
            run, var=args.out, quiet=args.quiet, on_interrupt=args.on_interrupt,
            timeout=args.timeout,
        )

    def _with_model(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """``request`` with the kernel's model settings for the built-in claude agent (its key
        masked from here on), or None, after printing how to configure one, when none is set."""
        from ..api.model_env import NO_MODEL_NOTE, with_model

        modelled = with_model(request)
        if modelled is None:
            print(NO_MODEL_NOTE)
            return None
        for value in (modelled.get("secrets") or {}).values():
            self.masker.add(value)
        return modelled

    def _fills(self, args: Any, agent: str | None) -> bool:
        """Whether ``{...}`` in this run's prompt is filled in: --fill/--raw, else the agent's
        config ("prompt": "code" is sent as written; prose, the default, is filled)."""
        if args.raw or args.fill:
            return bool(args.fill)
        if not agent:  # a follow-up by session or checkpoint: as written unless --fill
            return False
        config = self.client.agents.get(agent).config or {}
        return config.get("prompt", "text") != "code"

    def _run_request(self, args: Any, agent: str | None, prompt: str) -> dict[str, Any]:
        volumes = dict(parse_ref(ref, "--volume") for ref in args.volume or ())
        request: dict[str, Any] = {
            "agent": agent,
            "prompt": prompt,
            "agent_version": args.agent_version,
            "session_id": args.session,
            "checkpoint_id": args.checkpoint,
            "variables": parse_pairs(args.var, "--var") or None,
            "secrets": {name: self._secret(name) for name in args.secret or ()} or None,
            "volumes": {name: version or "latest" for name, version in volumes.items()} or None,
        }
        if args.artifact:
            request["artifact_name"], request["artifact_version"] = parse_ref(
                args.artifact, "--artifact"
            )
        return {key: value for key, value in request.items() if value is not None}

    def _secret(self, name: str) -> str:
        """The value of secret ``name``: the environment variable, else asked with getpass."""
        check_env_name(name, "--secret")
        value = os.environ.get(name)
        if not value:
            from IPython.core.error import StdinNotImplementedError

            try:
                import getpass

                value = getpass.getpass(f"{name}: ")
            except (StdinNotImplementedError, EOFError, OSError):
                raise MagicError(
                    f"--secret {name}: set the environment variable {name}; "
                    "this frontend cannot ask for it"
                ) from None
        if not value:
            raise MagicError(f"--secret {name}: the value is empty")
        self.masker.add(value)
        return value

    @magic_arguments("vm0 attach")
    @argument("run", metavar="RUN", help="the run id")
    @argument("-o", "--output", dest="out", metavar="VAR", help="also bind the Run to VAR")
    @argument(
        "--on-interrupt", choices=("cancel", "detach"), default="cancel",
        help="on Ctrl-C: cancel the run (default) or leave it running",
    )
    def _attach(self, args: Any, cell: str | None) -> Any:
        """Show a run's whole output so far, then follow it live (also from a new kernel)."""
        run = self.client.runs.get(args.run)
        if args.out:
            self.shell.user_ns[args.out] = run
        return self._follow(run, var=args.out, quiet=False, on_interrupt=args.on_interrupt)

    def _follow(
        self, run: Any, *, var: str | None, quiet: bool, on_interrupt: str,
        timeout: float | None = None,
    ) -> Any:
        """Stream ``run`` into a live view; the Run, or RunFailed when it did not complete."""
        from .follow import follow
        from .live import LiveView, TerminalView

        options: dict[str, Any] = dict(
            tail_lines=self.tail_lines, max_updates_per_second=self.max_updates_per_second,
            masker=self.masker, handle=var,
        )
        if quiet:
            view = LiveView.for_run(run, publish=_noop_publish, **options)
        elif getattr(self.shell, "kernel", None) is None:  # a terminal: no in-place redraws
            view = TerminalView.for_run(run, **options)
        else:
            view = LiveView.for_run(run, **options)
        # a completed run is the cell's value: its card follows, and the summary defers to it
        outcome = follow(
            run, view, on_interrupt=on_interrupt, timeout=timeout, card=True,  # type: ignore[arg-type]
        )
        if var:
            self.shell.user_ns[var] = run
        if outcome.problem is None:
            return run
        raise RunFailed(self.masker.mask(outcome.problem), run=run)

    @magic_arguments("vm0 cancel")
    @argument("run", metavar="RUN", help="the run id")
    def _cancel(self, args: Any, cell: str | None) -> None:
        """Cancel a pending or running run."""
        run = self.client.runs.cancel(args.run)
        print(f"{run.id} {run.status}")

    @magic_arguments("%vm0 map")
    @argument("agent", metavar="AGENT", help="the agent to run once per row")
    @argument("--over", required=True, metavar="VAR",
              help="a DataFrame (one run per row), list or Series (one per item) in the notebook")
    @argument("--concurrency", type=int, default=8, metavar="N", help="runs at once (default 8)")
    @argument("-o", "--output", dest="out", metavar="OUT", help="bind the results frame to OUT")
    @argument("--strict", action="store_true", help="fail the cell if any run did not complete")
    @_run_options
    def _map(self, args: Any, cell: str | None) -> Any:
        """Run AGENT once per row of VAR, the cell body as the prompt template.

        {column} in the body is filled from each row ({} or {item} for a list or Series).
        Shows progress and, at the end, the results (with -o OUT, a compact table and the
        whole frame in OUT). A failed run is a row; --strict fails the cell for it.
        """
        from .map_cell import run_map

        return run_map(self, args, cell)

    # -- listings -----------------------------------------------------------------------------

    @magic_arguments("vm0 runs")
    @argument("--status", help="pending, running, completed, failed, timeout or cancelled")
    @argument("--agent", metavar="NAME", help="only runs of this agent")
    @argument("--since", metavar="T", help="only runs created since T (ISO-8601)")
    @argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    @argument(
        "-o", "--output", dest="out", metavar="VAR",
        help="bind the full frame (every column) to VAR",
    )
    def _runs(self, args: Any, cell: str | None) -> Any:
        """The most recent runs, newest first: status, agent, start, duration and prompt.

        The full frame (every column, typed) is bound to VAR with -o VAR, and is what
        client.runs.list().to_pandas() gives.
        """
        import itertools

        from .. import frames
        from ..api.run import Run

        if args.limit < 1:
            raise MagicError("--limit must be at least 1")
        client = self.client
        agent_id = client.agents.get(args.agent).id if args.agent else None
        runs = client.runs.list(status=args.status, agent_id=agent_id, since=args.since)
        full = frames.records_frame(Run, itertools.islice(runs, args.limit))
        if args.out:
            self.shell.user_ns[args.out] = self.masker.mask_frame(full)
        return frames.runs_summary(full)

    @magic_arguments("vm0 logs")
    @argument("run", metavar="RUN", help="the run id")
    @argument("--type", help="agent, system, network or all")
    @argument("--level", help="debug, info, warn or error")
    def _logs(self, args: Any, cell: str | None) -> Any:
        """A run's logs as a DataFrame."""
        filters = {k: v for k, v in (("type", args.type), ("level", args.level)) if v}
        return self.client.runs.get(args.run).logs(**filters)

    @magic_arguments("vm0 metrics")
    @argument("run", metavar="RUN", help="the run id")
    @argument("--plot", action="store_true", help="a figure instead of the table")
    def _metrics(self, args: Any, cell: str | None) -> Any:
        """A run's CPU, memory, disk and network samples as a DataFrame (or a figure)."""
        run = self.client.runs.get(args.run)
        return run.plot_metrics() if args.plot else run.metrics()

    @magic_arguments("vm0 agents")
    def _agents(self, args: Any, cell: str | None) -> Any:
        """The agents, as a DataFrame: name, framework, and for claude-code whether its
        executable was found."""
        import pandas as pd

        from .agents import agent_rows

        columns = ["name", "framework", "executable", "found", "description", "version", "id"]
        return pd.DataFrame(agent_rows(self.client), columns=columns)

    @magic_arguments("vm0 volumes")
    def _volumes(self, args: Any, cell: str | None) -> Any:
        """The volumes (agent inputs), as a DataFrame."""
        return self.client.volumes.list().to_pandas()

    @magic_arguments("vm0 artifacts")
    def _artifacts(self, args: Any, cell: str | None) -> Any:
        """The artifacts (agent outputs), as a DataFrame."""
        return self.client.artifacts.list().to_pandas()

    # -- storage ------------------------------------------------------------------------------

    @magic_arguments("vm0 push")
    @argument("dir", metavar="DIR", help="the local folder to upload")
    @argument("volume", metavar="VOLUME", help="the volume name (created if missing)")
    @argument("-m", "--message", metavar="MSG", help="a note stored with the version")
    @argument("-o", "--output", dest="out", metavar="VAR", help="bind the new Version to VAR")
    def _push(self, args: Any, cell: str | None) -> None:
        """Upload a folder as a new version of a volume (unchanged files are not sent again)."""
        from ..api.errors import NotFoundError
        from ..cards import VERSION_CHARS

        if not os.path.isdir(args.dir):
            raise MagicError(f"{args.dir!r} is not a folder")
        volumes = self.client.volumes
        try:
            before = volumes.get(args.volume).current_version_id
        except NotFoundError:  # push creates it
            before = None
        version = volumes.push(args.dir, args.volume, message=args.message)
        if args.out:
            self.shell.user_ns[args.out] = version
        files = version.file_count or 0
        change = (
            "unchanged" if version.id == before else "new version" if before else "new volume"
        )
        print(
            f"{args.volume}@{version.id[:VERSION_CHARS]} · {files} file{'s' if files != 1 else ''}"
            f" · {_size(version.size or 0)} · {change}"
        )

    @magic_arguments("vm0 mount")
    @argument("kind", choices=("volume", "artifact"), help="volume or artifact")
    @argument("ref", metavar="NAME[@VER]", help="what to download (latest by default)")
    @argument("--to", metavar="DIR",
              help="a writable copy in DIR (default: the read-only cached folder)")
    @argument("--overwrite", action="store_true", help="replace what DIR holds")
    @argument("-o", "--output", dest="out", metavar="VAR", help="bind the local path to VAR")
    def _mount(self, args: Any, cell: str | None) -> Any:
        """Download a volume or artifact version (verified) and return its local folder."""
        name, version = parse_ref(args.ref, args.kind)
        group = self.client.volumes if args.kind == "volume" else self.client.artifacts
        try:
            path = group.mount(name, version=version or "latest", to=args.to,
                               overwrite=args.overwrite)
        except FolderNotEmptyError as exc:
            raise MagicError(str(exc).replace("overwrite=True", "--overwrite")) from None
        if args.out:
            self.shell.user_ns[args.out] = path
        return path

    @magic_arguments("vm0 cache")
    @argument("action", nargs="?", choices=("size", "clear"), default="size",
              help="size (the default) or clear")
    @argument("--older-than", type=float, metavar="DAYS",
              help="with clear: only versions not mounted for DAYS days")
    def _cache(self, args: Any, cell: str | None) -> None:
        """The downloaded versions kept on this machine: their size, or clear them."""
        cache = self.client.cache
        if args.action == "clear":
            if args.older_than is not None and args.older_than < 0:
                raise MagicError("--older-than takes a number of days, 0 or more")
            days = args.older_than
            freed = cache.clear(older_than=None if days is None else days * 86400)
            print(f"freed {_size(freed)} · {_size(cache.size())} left in {cache.path}")
        else:
            print(f"{_size(cache.size())} in {cache.path}")

    # -- widgets, server, settings ------------------------------------------------------------

    @magic_arguments("vm0 launcher")
    def _launcher(self, args: Any, cell: str | None) -> Any:
        """A form to pick an agent, write a prompt and start a run."""
        from .widgets import RunLauncher

        return RunLauncher(
            self.client, masker=self.masker, tail_lines=self.tail_lines,
            max_updates_per_second=self.max_updates_per_second,
        )

    @magic_arguments("vm0 browser")
    def _browser(self, args: Any, cell: str | None) -> Any:
        """A table of recent runs to select, inspect, follow live and cancel."""
        from .widgets import RunsBrowser

        return RunsBrowser(
            self.client, masker=self.masker, tail_lines=self.tail_lines,
            max_updates_per_second=self.max_updates_per_second,
        )

    @magic_arguments("vm0 local")
    @argument("action", choices=("status", "start", "stop"), help="status, start or stop")
    def _local(self, args: Any, cell: str | None) -> None:
        """The embedded local server (data in $VM0_LOCAL_DIR): is it running, start it, stop it.

        The server runs in the background, so runs outlive a kernel restart.
        """
        from ..local import daemon

        if args.action == "start":
            try:
                daemon.ensure_server()
            except RuntimeError as exc:  # its message ends with the server log's tail
                raise MagicError(str(exc).splitlines()[0]) from None
        elif args.action == "stop":
            info = daemon.server_status()
            if not daemon.stop_server():
                print("local server not running")
                return
            print(f"local server stopped (it was at {info['url'] if info else '?'})")
            if info and self._client is not None and self._client.api_url == info["url"]:
                self._client = None  # the next command connects (and starts one) again
                self._sandbox_checked = False
            return
        info = daemon.server_status()
        if info is None:
            print("local server not running")
            return
        print(
            f"local server running at {info['url']} (pid {info['pid']}, "
            f"sandbox {info.get('sandbox') or 'none'}, data in {info['data_dir']})"
        )
        if os.environ.get("VM0_API_URL") or os.environ.get("VM0_API_KEY"):
            print("this kernel uses VM0_API_URL / VM0_API_KEY, not the local server")

    @magic_arguments("vm0 config")
    def _config(self, args: Any, cell: str | None) -> None:
        """Where this kernel is connected, and the display options."""
        client = self._connect(announce=False)  # said here, not twice
        print(f"connected to: {describe_connection(client)}")
        # what the server says about itself, or that it does not speak the API at all
        info = client.server.info()
        print(f"server: {self.masker.mask(str(info))}")
        self._check_sandbox(info)
        print(f"API key: {client.masked_key}")
        print(f"secrets masked in output: {len(self.masker)} value(s)")
        for name in ("tail_lines", "max_updates_per_second"):
            print(f"%config VM0Magics.{name} = {getattr(self, name)!r}")

    # -- display of runs ----------------------------------------------------------------------

    def register_formatters(self) -> None:
        """Mask secrets in the Run's own rich display (the cell value of ``%%vm0 run``)."""
        from .. import cards

        formatters = self.shell.display_formatter.formatters
        masker = self.masker

        # the server's sandbox too: a run whose detail does not say its own still shows it
        def html(run: Any) -> str:
            return masker.mask(cards.run_html(run, sandbox=self.server_sandbox))

        def pretty(run: Any, printer: Any, cycle: bool) -> None:
            printer.text(masker.mask(cards.run_text(run, sandbox=self.server_sandbox)))

        formatters["text/html"].for_type_by_name(*_RUN_CLASS, html)
        formatters["text/plain"].for_type_by_name(*_RUN_CLASS, pretty)

    def unregister_formatters(self) -> None:
        """Take back the notebook renderers of :class:`Run` (on ``%unload_ext``)."""
        for mime in ("text/html", "text/plain"):
            formatter = self.shell.display_formatter.formatters[mime]
            formatter.deferred_printers.pop(_RUN_CLASS, None)
            try:
                from ..api.run import Run

                formatter.type_printers.pop(Run, None)
            except ImportError:  # pragma: no cover
                pass


def _fill_options(args: Any, namespace: dict[str, Any]) -> None:
    """Fill ``{expression}`` in the run's option values (not its prompt), in place."""
    for dest in ("session", "checkpoint", "agent_version", "artifact"):
        value = getattr(args, dest)
        if value:
            setattr(args, dest, fill(value, namespace))
    for dest in ("var", "volume", "secret"):
        values = getattr(args, dest)
        if values:
            setattr(args, dest, [fill(value, namespace) for value in values])


def _size(size: int) -> str:
    """``5046`` -> ``4.9 KiB``."""
    if size < 1024:
        return f"{size} B"
    value, units = size / 1024, ["KiB", "MiB", "GiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"


def describe_connection(client: Any) -> str:
    """``the local server at http://127.0.0.1:PORT`` or the server's URL; never the key."""
    from .server import is_local

    url = client.api_url
    return f"the local server at {url}" if is_local(client) else url


# subcommand -> its method, in the order %vm0? lists them
_COMMANDS: dict[str, Callable[..., Any]] = {
    "run": VM0Magics._run,
    "attach": VM0Magics._attach,
    "cancel": VM0Magics._cancel,
    "map": VM0Magics._map,
    "runs": VM0Magics._runs,
    "logs": VM0Magics._logs,
    "metrics": VM0Magics._metrics,
    "agents": VM0Magics._agents,
    "volumes": VM0Magics._volumes,
    "artifacts": VM0Magics._artifacts,
    "push": VM0Magics._push,
    "mount": VM0Magics._mount,
    "cache": VM0Magics._cache,
    "launcher": VM0Magics._launcher,
    "browser": VM0Magics._browser,
    "local": VM0Magics._local,
    "config": VM0Magics._config,
}

_EXAMPLES = """\
Run VM0 agents from notebook cells and look at what they did.

Examples

  1. Ask an agent, with a notebook variable filled into the prompt:
       %%vm0 run echo -o run
       Summarise {dataset_name}.
     The cell shows the run live; run is the Run (run.output, run.logs()).

  2. Run code as written (python and shell prompts are never filled):
       %%vm0 run python
       for i in range(3): print(f"item-{i}")

  3. Start a long run, come back to it later (also after a kernel restart):
       %vm0 run shell "sleep 600; echo done" --no-wait
       %vm0 attach RUN_ID

  4. Give an agent data and keep what it writes:
       %vm0 push ./data input-data
       %%vm0 run shell --volume input-data --artifact counts
       wc -l volumes/input-data/* > artifact/counts.txt
     then %vm0 mount artifact counts downloads the new version.

  5. Look back: recent runs, one run's logs and metrics:
       %vm0 runs --status failed
       %vm0 logs RUN_ID
       %vm0 metrics RUN_ID --plot

Display options: %config VM0Magics.tail_lines = 100 (lines kept on screen),
%config VM0Magics.max_updates_per_second = 10.

The built-in claude agent gets the kernel's model settings: ANTHROPIC_API_KEY and
ANTHROPIC_AUTH_TOKEN as secrets, ANTHROPIC_BASE_URL and ANTHROPIC_MODEL as variables; with
none set, %%vm0 run claude says how to set one and skips the run.
"""


def _command_help(name: str, command: Callable[..., Any]) -> str:
    """One command in plain text: its usage line, what it does, then its options."""
    parser = command.parser  # type: ignore[attr-defined]
    words = parser.format_usage().split()[1:]  # without "usage:"
    words[0] = "%%vm0" if name in ("run", "map") else "%vm0"  # the cell magics
    usage = textwrap.fill(" ".join(words), 96, subsequent_indent="        ")
    # magic_arguments turned __doc__ into reST; the parser keeps the docstring as written
    paragraphs = (parser.description or "").strip().split("\n\n")
    lines = [usage, *(textwrap.fill(" ".join(p.split()), 96, initial_indent="    ",
                                    subsequent_indent="    ") for p in paragraphs if p.strip())]
    for action in parser._actions:  # argparse keeps no public list of its arguments
        if action.help and action.option_strings and action.dest != "help":
            metavar = f" {action.metavar}" if action.metavar else ""
            lines.append(f"    {', '.join(action.option_strings)}{metavar}: {action.help}")
    return "\n".join(lines)


VM0Magics.vm0.__doc__ = (
    _EXAMPLES + "\nCommands\n\n"
    + "\n\n".join(_command_help(name, command) for name, command in _COMMANDS.items())
)


_loaded: VM0Magics | None = None


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%vm0`` / ``%%vm0`` in ``ipython`` (``%load_ext vm0_notebook``); prints nothing."""
    global _loaded
    if _loaded is not None and _loaded.shell is ipython:
        return
    magics = VM0Magics(ipython)
    ipython.register_magics(magics)
    magics.register_formatters()
    _loaded = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Remove ``%vm0`` / ``%%vm0`` (``%unload_ext vm0_notebook``)."""
    global _loaded
    magics, _loaded = _loaded, None
    if magics is None:
        return
    magics.unregister_formatters()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("vm0", None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
