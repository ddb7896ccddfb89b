"""The scripted model's answers to the questions the notebooks in notebooks/ ask ``claude``.

:class:`NotebookModel` is :class:`tests.model_server.ModelServer` answering by the question
rather than in script order, so one endpoint serves a whole notebook, runs in parallel
(``client.map``) and follow-ups included. Profiling the penguins takes real tool calls: a
``Write`` of the summary and a ``Bash`` command whose Python (standard library only: the
sandbox has the system's python3) draws a bar chart as a PNG in ``artifact/``.
"""

from __future__ import annotations

import re
from typing import Any

from tests.model_server import SIDE_TEXT, Block, ModelServer, Request, text, tool_use

SUMMARY = """# Palmer penguins: profile

- 344 penguins, 8 columns: species, island, four measurements, sex, year.
- Missing values: 2 rows lack every measurement, 11 lack the sex.
- Gentoo penguins are the heaviest (about 5,100 g against 3,700 g for the others).
"""
# A PNG of three bars (the species' counts: 152, 68, 124) from zlib and struct alone.
CHART = r"""python3 - <<'PY'
import struct, zlib
counts, width, height = [152, 68, 124], 120, 80
rows = []
for y in range(height):
    row = b"\x00"
    for x in range(width):
        bar = x // 40
        on = 8 <= x % 40 < 32 and height - y <= counts[bar] * height // 160
        row += bytes((40, 90, 160) if on else (255, 255, 255))
    rows.append(row)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
open("artifact/species-counts.png", "wb").write(png)
print("wrote artifact/species-counts.png,", len(png), "bytes")
PY"""
ANSWERS = {
    "huddle": "They huddle to share warmth and shelter from the wind. Taking turns at the "
              "cold edge spreads the cost across the group.",
    "separates": "Flipper length: Gentoo flippers are longer than any Adelie's or Chinstrap's.",
    "island": "Biscoe: its Gentoo penguins weigh about 5,100 g on average.",
    "bill depth": "Yes: males' bills are about 1.5 mm deeper within each species.",
    "missing": "bill_length_mm, bill_depth_mm, flipper_length_mm and body_mass_g miss 2 "
               "values each; sex misses 11.",
}

ISLANDS = {"Biscoe": "Adelie and Gentoo", "Dream": "Adelie and Chinstrap",
           "Torgersen": "Adelie only"}


def _prompt_and_step(request: Request) -> tuple[str, int]:
    """This run's prompt (the last user message with text) and how many tool results came
    back since it."""
    step = 0
    for message in reversed(request.messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts = [b.get("text", "") for b in blocks or () if b.get("type") == "text"]
        if any(b.get("type") == "tool_result" for b in blocks or ()):
            step += 1
        elif texts:
            return "\n".join(texts), step
    return "", step


def answer(request: Request) -> list[Block]:
    """The reply to one turn of a notebook's question."""
    prompt, step = _prompt_and_step(request)
    if "Profile volumes/penguins" in prompt:
        if step == 0:  # the artifact's last version is in artifact/: read before replacing
            return tool_use("Read", {"file_path": "artifact/summary.md"},
                            preface="I'll look at the existing summary first.")
        if step == 1:
            return tool_use("Write", {"file_path": "artifact/summary.md", "content": SUMMARY})
        if step == 2:
            return tool_use("Bash", {"command": CHART, "description": "Draw the species chart"})
        return text("Wrote artifact/summary.md and artifact/species-counts.png.")
    island = re.search(r"which species live on (\w+)", prompt)
    if island:
        return text(f"{island.group(1)}: {ISLANDS.get(island.group(1), 'no penguins')}.")
    for keyword, reply in ANSWERS.items():
        if keyword in prompt:
            return text(reply)
    return text("I was not scripted for that question.")


class NotebookModel(ModelServer):
    """Answers every agent turn with :func:`answer`; side requests as the base class does."""

    def reply_for(self, request: Request) -> list[Block]:
        if not request.is_turn:
            return text(SIDE_TEXT)
        blocks: list[dict[str, Any]] = answer(request)
        return [self._with_id(block) for block in blocks]
