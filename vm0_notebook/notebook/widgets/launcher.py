"""The run launcher: a form that starts a run and follows it live below.

    %vm0 launcher                # or, from Python:
    launcher = RunLauncher()     # vm0_notebook.Client() unless a client is given
    launcher                     # pick, type, Launch; then launcher.run is the Run

The run streams into the launcher's own output area with the same rate-limited live view as
``%%vm0 run`` (from a background thread, so the Cancel button stays responsive). Secrets are
given by the *names* of the kernel's environment variables, never typed into the form (widget
state can be saved with the notebook).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from ...api.errors import MagicError
from ..args import check_env_name
from ..masking import SecretMasker
from .panel import LABEL_STYLE, LiveOutput, Panel, set_options


class RunLauncher(Panel):
    """A form that starts a run and shows it live below; ``launcher.run`` is the last Run.

        launcher = RunLauncher()           # or %vm0 launcher
        launcher                           # choose the agent, write the prompt, Launch
        launcher.wait().output             # after it finished: the run's final text

    Variables are ``NAME=value`` lines. Secrets are names of environment variables of the
    kernel, passed as the run's secrets and masked in everything shown.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        masker: SecretMasker | None = None,
        tail_lines: int = 100,
        max_updates_per_second: float = 10.0,
    ) -> None:
        import ipywidgets as w

        super().__init__(client, masker)
        self.run: Any = None
        wide = w.Layout(width="100%")
        self.agent = w.Dropdown(description="Agent", style=LABEL_STYLE)
        self.prompt = w.Textarea(
            description="Prompt", placeholder="What should the agent do?", style=LABEL_STYLE,
            layout=w.Layout(width="100%", height="7em"),
        )
        self.volumes = w.SelectMultiple(description="Volumes", rows=3, style=LABEL_STYLE)
        self.artifact = w.Combobox(
            description="Artifact", placeholder="none, or a name (new or existing)",
            ensure_option=False, style=LABEL_STYLE, layout=w.Layout(width="26em"),
        )
        self.variables = w.Textarea(
            description="Variables", placeholder="NAME=value, one per line",
            rows=2, style=LABEL_STYLE, layout=wide,
        )
        self.secrets = w.Text(
            description="Secrets", style=LABEL_STYLE, layout=wide,
            placeholder="names of the kernel's environment variables, e.g. OPENAI_API_KEY",
        )
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="play")
        self.cancel_button = w.Button(
            description="Cancel", button_style="danger", icon="stop", disabled=True
        )
        self.reload_button = w.Button(
            description="Reload", icon="refresh", tooltip="Reload agents, volumes and artifacts"
        )
        self.output = w.Output(layout=wide)
        self._live = LiveOutput(
            self.output, self.masker, say=self.say, on_end=lambda run: self._set_running(False),
            tail_lines=tail_lines, max_updates_per_second=max_updates_per_second,
        )
        self.launch_button.on_click(self._guard(self.launch))
        self.cancel_button.on_click(self._guard(self.cancel))
        self.reload_button.on_click(self._guard(self.reload))
        self.widget = w.VBox(
            [
                w.HBox([self.agent, self.reload_button]),
                self.prompt,
                w.HBox([self.volumes, self.artifact]),
                self.variables,
                self.secrets,
                w.HBox([self.launch_button, self.cancel_button, self.message],
                       layout=w.Layout(align_items="center")),
                self.output,
            ],
            layout=w.Layout(max_width="60em"),
        )
        self._mark("vm0-launcher")
        self.reload()

    # -- choices ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Fetch the agents, volumes and artifacts again (keeping what is chosen, if it still
        exists)."""
        from ..agents import agent_label, agent_rows

        # labelled with the framework, and a claude-code agent whose executable is missing
        agents = [(agent_label(row), row["name"]) for row in agent_rows(self.client)]
        set_options(self.agent, agents)
        if self.agent.value is None and agents:  # open ready to launch, not on a blank choice
            self.agent.value = agents[0][1]
        chosen = set(self.volumes.value)
        self.volumes.options = sorted(v.name for v in self.client.volumes.list())
        self.volumes.value = tuple(n for n in self.volumes.options if n in chosen)
        self.volumes.disabled = not self.volumes.options
        self.volumes.tooltip = (
            "Mounted at their latest version; Ctrl/Cmd-click to pick several"
            if self.volumes.options else "No volumes yet: client.volumes.push(folder, name)"
        )
        self.artifact.options = sorted(a.name for a in self.client.artifacts.list())
        if not agents:
            self.say("no agents yet: create one with client.agents.create(name, config)")

    # -- the run ------------------------------------------------------------------------------

    def request(self) -> dict[str, Any]:
        """The form as keyword arguments of ``client.runs.create``; MagicError if it is
        incomplete. Secret values come from the kernel's environment and join the masker."""
        if not self.agent.value:
            raise MagicError("choose an agent")
        prompt = self.prompt.value
        if not prompt.strip():
            raise MagicError("the prompt is empty: write what the agent should do")
        request: dict[str, Any] = {"agent": self.agent.value, "prompt": prompt}
        variables = parse_variables(self.variables.value)
        if variables:
            request["variables"] = variables
        secrets = read_secrets(self.secrets.value)
        if secrets:
            for value in secrets.values():
                self.masker.add(value)
            request["secrets"] = secrets
        if self.volumes.value:
            request["volumes"] = {name: "latest" for name in self.volumes.value}
        if self.artifact.value.strip():
            request["artifact_name"] = self.artifact.value.strip()
        return request

    @property
    def running(self) -> bool:
        """True while a launched run is being followed."""
        return self._live.running

    def launch(self) -> Any:
        """Start the run the form describes and follow it live in the output area."""
        if self.running:
            raise MagicError(f"{self.run.id} is still running: cancel it or wait")
        request = self.request()
        self.say("starting…")
        run = self.client.runs.create(**request)
        self.run = run
        self.say("")
        self._set_running(True)
        self._live.start(run)
        return run

    def cancel(self) -> None:
        """Cancel the run being followed (the live view shows it end as cancelled)."""
        run = self.run
        if run is None or not self.running:
            return
        from ...api.errors import InvalidRequestError

        self.say(f"cancelling {run.id}…")
        with contextlib.suppress(InvalidRequestError):  # it finished in the meantime
            run.cancel()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the launched run's live view is finished; the Run (None if none)."""
        self._live.join(timeout)
        return self.run

    def _set_running(self, running: bool) -> None:
        self.launch_button.disabled = running
        self.cancel_button.disabled = not running


def parse_variables(text: str) -> dict[str, str]:
    """``NAME=value`` lines -> ``{NAME: value}``; blank lines and ``#`` comments are skipped.

        >>> parse_variables("MODE=fast\\n# note\\nLIMIT=3")
        {'MODE': 'fast', 'LIMIT': '3'}
    """
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise MagicError(f"variables, line {number}: write NAME=value")
        variables[check_env_name(name.strip(), "variable")] = value
    return variables


def read_secrets(names: str) -> dict[str, str]:
    """Names of environment variables (comma or space separated) -> ``{NAME: value}``."""
    secrets: dict[str, str] = {}
    for name in re.split(r"[\s,]+", names.strip()):
        if not name:
            continue
        value = os.environ.get(check_env_name(name, "secret"))
        if not value:
            raise MagicError(
                f"secret {name}: set the environment variable {name} in the kernel "
                "(the form takes names, never values)"
            )
        secrets[name] = value
    return secrets
