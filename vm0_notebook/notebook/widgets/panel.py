"""What the widgets share: a panel with a client, a masker and a message line, and the helpers
that show things in it. ipywidgets is imported when a panel is built, not when this module is.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterator
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


class Panel:
    """What both widgets share: a client, a masker, a message line and error reporting."""

    widget: Any

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
        """Close the widget and everything in it (their comms with the frontend)."""
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
