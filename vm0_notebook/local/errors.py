"""The errors the contract names, raised by the stores and the routes alike.

    raise not_found("agent", "my-agent", "agent")   # 404 resource_not_found

The web layer turns an :class:`ApiError` into the error envelope; nothing here knows HTTP
beyond the status that carries each error type (``contract.ERROR_STATUS``).
"""

from __future__ import annotations

from typing import Any

from vm0_notebook.contract import ERROR_STATUS, name_problem


class ApiError(Exception):
    """An error the contract names: ``{"error": {"type", "code", "message", "param"?}}``."""

    def __init__(
        self,
        type: str,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.type, self.code, self.message, self.param = type, code, message, param
        self.status = ERROR_STATUS[type]
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response: ``{"error": {type, code, message, param?}}``."""
        error = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str = "invalid_parameter") -> ApiError:
    """A 400 ``invalid_request_error`` for a bad parameter."""
    return ApiError("invalid_request_error", code, message, param)


def missing(param: str, message: str | None = None) -> ApiError:
    """A 400 ``missing_parameter`` error for a required parameter left out."""
    return invalid(message or f"Missing required parameter: '{param}'", param, "missing_parameter")


def invalid_state(message: str) -> ApiError:
    """A 400 ``invalid_state`` error: the request is valid but not in the resource's state."""
    return invalid(message, None, "invalid_state")


def not_found(what: str, key: str, param: str | None = None) -> ApiError:
    """A 404 ``resource_not_found`` error naming what was looked for."""
    return ApiError("not_found_error", "resource_not_found", f"No such {what}: '{key}'", param)


def conflict(message: str, param: str | None = None) -> ApiError:
    """A 409 ``resource_already_exists`` error."""
    return ApiError("conflict_error", "resource_already_exists", message, param)


def forbidden(message: str) -> ApiError:
    """A 403 ``permission_denied`` error."""
    return ApiError("authorization_error", "permission_denied", message)


# The name rule is checked where names arrive (routes) and where they are kept (stores).
def check_name(name: Any, param: str = "name") -> str:
    """The name, checked: 1-100 lowercase letters, digits and hyphens, no hyphen at either end."""
    if not isinstance(name, str) or not name:
        raise missing(param) if not name else invalid(f"'{param}' must be a string", param)
    if problem := name_problem(name, param):
        raise invalid(problem, param)
    return name
