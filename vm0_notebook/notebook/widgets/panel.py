"""What the widgets share: a panel with a client, a masker and a message line, and the helpers
that show things in it. ipywidgets is imported when a panel is built, not when this module is.
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...api.errors import MagicError
from ...cards import DIM_COLOR, STATUS_CSS
from ..masking import SecretMasker

LABEL_STYLE = {"description_width": "5.5em"}
_MESSAGE_STYLES = {
    "error": f"color:{STATUS_CSS['failed']}",
    "ok": f"color:{STATUS_CSS['completed']}",
    "info": f"color:{DIM_COLOR}",
}


def _connect(client: Any) -> Any:
    if client is not None:
        return client
    from ...api.client import Client

    return Client()


def widget_masker(client: Any, masker: SecretMasker | None = None) -> SecretMasker:
    """``masker`` (the kernel's, from the magics) or a new one, knowing the client's API key."""
    masker = masker if masker is not None else SecretMasker()
    for value in client.secret_values():
        masker.add(value)
    masker.add(os.environ.get("VM0_API_KEY"))
    return masker


def display_bundle(obj: Any, masker: SecretMasker) -> dict[str, Any]:
    """``obj`` as a display bundle (the kernel's formatters where there are some), text masked."""
    if hasattr(obj, "iloc"):  # a DataFrame: mask cells before pandas cuts long ones short
        obj = masker.mask_frame(obj)
    from IPython import get_ipython
    from IPython.core.formatters import DisplayFormatter

    shell = get_ipython()
    # the kernel's formatters (with the user's settings), else IPython's defaults
    formatter = shell.display_formatter if shell is not None else DisplayFormatter()
    data, _ = formatter.format(obj)
    data = {mime: _text(masker, v) for mime, v in data.items()}
    if "text/plain" not in data:
        data["text/plain"] = masker.mask(repr(obj))
    return data


def _text(masker: SecretMasker, value: Any) -> Any:
    """A bundle value as an output carries it: text masked, binary (a PNG) as base64 text."""
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return masker.mask(value) if isinstance(value, str) else value


def show_in(output: Any, data: dict[str, Any]) -> None:
    """Replace what an ``ipywidgets.Output`` shows with one display bundle (any thread)."""
    output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


#: Seconds :meth:`LiveOutput.stop` waits for the thread to let go (a hang guard: it lets go
#: within a tenth of a second, or after one HTTP request when the run just ended).
STOP_WAIT = 10.0


@dataclass
class _Following:
    run: Any
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class LiveOutput:
    """Follows one run at a time into an ``ipywidgets.Output``: the cell's live view (newest line
    in view, the header's clock ticking), from a background thread so the widget's buttons stay
    responsive.

        live = LiveOutput(output, masker, say=panel.say, on_end=lambda run: ...)
        live.start(run)      # stops following the previous run first
        live.stop()          # lets go: the run keeps going, nothing more is written

    ``say(text, kind)`` gets what to tell the user when the run ends (its problem, if any),
    ``on_end(run)`` the refreshed Run, and ``on_status(run, status)`` (if given) each new status
    the stream brings, as it is drawn; none is called for a run that was let go.
    """

    def __init__(
        self, output: Any, masker: SecretMasker, *, say: Callable[[str, str], None],
        on_end: Callable[[Any], None], on_status: Callable[[Any, str], None] | None = None,
        tail_lines: int = 100, max_updates_per_second: float = 10.0,
    ) -> None:
        self.output = output
        self.masker = masker
        self.tail_lines = tail_lines
        self.max_updates_per_second = max_updates_per_second
        self._say = say
        self._on_end = on_end
        self._on_status = on_status
        self._current: _Following | None = None
        # held while writing, so once stop() has it no old thread writes again
        self._lock = threading.RLock()

    @property
    def running(self) -> bool:
        """True while a run is being followed."""
        current = self._current
        return current is not None and current.thread is not None and current.thread.is_alive()

    def start(self, run: Any) -> None:
        """Clear the output and follow ``run`` into it (letting go of any run followed before)."""
        self.stop()
        following = _Following(run)
        following.thread = threading.Thread(
            target=self._follow, args=(following,), name="vm0-live-output", daemon=True
        )
        with self._lock:
            self._current = following
            self.output.outputs = ()
        following.thread.start()

    def stop(self) -> None:
        """Stop following: the run keeps going, the output keeps what it shows, and once this
        returns the thread writes nothing more (it is gone, or has STOP_WAIT to go)."""
        with self._lock:
            following, self._current = self._current, None
        if following is None or following.thread is None:
            return
        following.stop.set()
        if following.thread is not threading.current_thread():
            following.thread.join(STOP_WAIT)

    def join(self, timeout: float | None = None) -> None:
        """Block until the run followed now has ended (and its end was told)."""
        current = self._current
        if current is not None and current.thread is not None:
            current.thread.join(timeout)

    def _follow(self, following: _Following) -> None:
        from ..follow import follow
        from ..live import LiveView

        run = following.run
        told_status = "pending"  # a new view's, until the stream says otherwise

        def publish(bundle: dict[str, str], display_id: str, update: bool) -> None:
            nonlocal told_status
            with self._lock:
                if following is not self._current:
                    return
                show_in(self.output, dict(bundle))
                if self._on_status is not None and view.status != told_status:
                    told_status = view.status
                    self._on_status(run, told_status)

        view = LiveView.for_run(
            run, tail_lines=self.tail_lines, max_updates_per_second=self.max_updates_per_second,
            masker=self.masker, publish=publish,
        )
        try:
            outcome = follow(run, view, stop=following.stop)
            # the view's summary leaves the reason to the message line
            told = (outcome.problem or "", "error" if outcome.problem else "info")
        except Exception as exc:  # a thread has nobody else to tell
            told = (f"{type(exc).__name__}: {exc}", "error")
        with self._lock:
            if following is not self._current:
                return
            try:
                self._say(*told)
                self._on_end(run)
            except Exception as exc:
                self._say(f"{type(exc).__name__}: {exc}", "error")


class Panel:
    """What both widgets share: a client, a masker, a message line and error reporting."""

    widget: Any
    #: Where the panel follows a run live, if it does.
    _live: LiveOutput | None = None

    def __init__(self, client: Any, masker: SecretMasker | None) -> None:
        import ipywidgets as w

        self.client = _connect(client)
        self.masker = widget_masker(self.client, masker)
        self.message = w.HTML()

    def say(self, text: str, kind: str = "info") -> None:
        """Show one short line (masked) under the controls; empty ``text`` clears it."""
        style = _MESSAGE_STYLES.get(kind, "")
        body = html.escape(self.masker.mask(text))
        self.message.value = f'<span style="{style}">{body}</span>' if text else ""

    def _guard(self, action: Callable[[], Any]) -> Callable[..., None]:
        """A widget callback running ``action``: its errors show in the message line, since
        an exception in a callback would otherwise only reach the browser's log console."""

        def callback(*_: Any) -> None:
            try:
                action()
            except Exception as exc:
                from ...api.errors import VM0Error

                # the client's and the form's messages say what to do; others need their type
                known = isinstance(exc, MagicError | VM0Error)
                self.say(str(exc) if known else f"{type(exc).__name__}: {exc}", "error")

        return callback

    def _mark(self, name: str) -> None:
        """Give the widget its class ``name``, and keep MathJax out of all it shows."""
        from ...cards import NO_MATH

        for class_name in (name, *NO_MATH.split()):
            self.widget.add_class(class_name)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close the widget and everything in it (their comms with the frontend), after letting
        go of the run it follows (which keeps going)."""
        if self._live is not None:
            self._live.stop()
        for child in _descendants(self.widget):
            child.close()


def _descendants(widget: Any) -> Iterator[Any]:
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)
    yield widget


def set_options(dropdown: Any, options: list[Any]) -> None:
    """Replace a dropdown's options, keeping its value when it is still one of them."""
    current = dropdown.value
    dropdown.options = options
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if current in values:
        dropdown.value = current
