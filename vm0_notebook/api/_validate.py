"""Checks made before any request, with the messages the server would give."""

from __future__ import annotations

import re
from typing import Any

from ..contract import name_problem, version_prefix_problem
from .errors import InvalidRequestError

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def invalid(
    message: str, param: str | None, code: str = "invalid_parameter"
) -> InvalidRequestError:
    """An :class:`InvalidRequestError` for a bad argument, raised before any request is sent."""
    return InvalidRequestError(message, type="invalid_request_error", code=code, param=param)


def check_name(name: Any, param: str = "name") -> str:
    """A valid agent/volume/artifact name, or the server's 400."""
    if not isinstance(name, str) or not name:
        if not name:
            raise invalid(f"Missing required parameter: '{param}'", param, "missing_parameter")
        raise invalid(f"'{param}' must be a string", param)
    problem = name_problem(name, param)
    if problem is not None:
        raise invalid(problem, param)
    return name


def check_prompt(prompt: Any) -> str:
    """The prompt, checked to be a non-blank string; raises a clear error otherwise."""
    if prompt is None:
        raise invalid("Missing required parameter: 'prompt'", "prompt", "missing_parameter")
    if not isinstance(prompt, str):
        raise invalid("'prompt' must be a string", "prompt")
    if not prompt.strip():
        raise invalid("'prompt' must not be empty", "prompt")
    return prompt


def check_version_ref(ref: Any, param: str = "version_id") -> str:
    """``latest``, a full version id, or a prefix of 8+ hex characters."""
    if not isinstance(ref, str) or not ref:
        raise invalid(f"'{param}' must be a string", param)
    problem = version_prefix_problem(ref)  # other id shapes are the server's to judge
    if problem is not None:
        raise invalid(problem, param)
    return ref


def looks_like_id(value: str) -> bool:
    """True for a prefixed id (``agt_...``, never a valid name) or a plain UUID."""
    return "_" in value or bool(_UUID.match(value))


def str_map(value: Any, param: str) -> dict[str, str] | None:
    """An optional ``{str: str}`` such as ``variables`` or ``secrets``."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(f"'{param}' must map non-empty names to strings", param)
    return value
