"""JSON Schemas of the VM0 API v1 responses, written from ``shared/vm0-api.md`` and the seeds.

The local server answers in the canonical snake_case shape; these schemas describe that shape
(with the platform's stricter choices where the seeds are silent: ``created_by`` is a string,
a new storage's ``current_version`` is null, upload items carry an ``upload_id``). Objects allow
extra fields, as the contract lets a server add them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these required (and optional) properties; extra properties allowed."""
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def page_of(item: Schema) -> Schema:
    return obj({"data": {"type": "array", "items": item}, "pagination": PAGINATION})


STRING: Schema = {"type": "string", "minLength": 1}
TEXT: Schema = {"type": "string"}
COUNT: Schema = {"type": "integer", "minimum": 0}
NUMBER: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
JSON_OBJECT: Schema = {"type": "object"}
# ISO-8601 UTC such as 2024-01-01T00:00:00Z or with milliseconds
TIMESTAMP: Schema = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
}
NAME: Schema = {"type": "string", "pattern": r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", "maxLength": 100}
VERSION_ID: Schema = {"type": "string", "pattern": r"^[0-9a-f]{64}$"}
STATUS: Schema = {
    "enum": ["pending", "running", "completed", "failed", "timeout", "cancelled"]
}
FINAL_STATUS: Schema = {"enum": ["completed", "failed", "timeout", "cancelled"]}
URL: Schema = {"type": "string", "pattern": r"^https?://"}

PAGINATION = obj({"has_more": BOOL, "next_cursor": nullable(STRING)})

ERROR = obj({
    "error": obj(
        {
            "type": {"enum": [
                "invalid_request_error", "authentication_error", "authorization_error",
                "not_found_error", "conflict_error", "rate_limit_error", "api_error",
            ]},
            "code": STRING,
            "message": STRING,
        },
        {"param": nullable(TEXT), "doc_url": nullable(TEXT)},
    )
})

HEALTH = obj({
    "status": {"const": "ok"},
    "version": STRING,
    "sandbox": {"enum": ["bubblewrap", "process", "unavailable"]},
})

# -- agents ----------------------------------------------------------------------------------

AGENT_VERSION = obj(
    {
        "id": STRING,
        "agent_id": STRING,
        "version_number": {"type": "integer", "minimum": 1},
        "created_at": TIMESTAMP,
    },
    {"message": nullable(TEXT), "created_by": nullable(TEXT)},
)
AGENT = obj({
    "id": STRING,
    "name": NAME,
    "current_version_id": nullable(STRING),
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
})
AGENT_DETAIL = {
    "allOf": [
        AGENT,
        obj(
            {"config": JSON_OBJECT},
            {"description": nullable(TEXT), "current_version": nullable(AGENT_VERSION)},
        ),
    ]
}

# -- runs ------------------------------------------------------------------------------------

RUN = obj({
    "id": STRING,
    "agent_id": STRING,
    "agent_name": NAME,
    "status": STATUS,
    "prompt": STRING,
    "created_at": TIMESTAMP,
    "started_at": nullable(TIMESTAMP),
    "completed_at": nullable(TIMESTAMP),
})
RUN_DETAIL = {
    "allOf": [
        RUN,
        obj({
            "error": nullable(TEXT),
            "execution_time_ms": nullable(COUNT),
            "checkpoint_id": nullable(STRING),
            "session_id": nullable(STRING),
            "artifact_name": nullable(NAME),
            "artifact_version": nullable(VERSION_ID),
            "volumes": nullable({"type": "object", "additionalProperties": VERSION_ID}),
        }),
    ]
}

STREAM_JSON = obj({"type": STRING})
EVENT_DATA: dict[str, Schema] = {
    "status": obj({"status": STATUS, "run_id": STRING}),
    "output": obj({
        "sequence": {"type": "integer", "minimum": 1},
        "type": STRING,
        "data": STREAM_JSON,
        "timestamp": TIMESTAMP,
    }),
    "error": obj({"message": STRING, "code": STRING}),
    "heartbeat": obj({"timestamp": TIMESTAMP}),
    "complete": obj({
        "status": FINAL_STATUS,
        "output": nullable(TEXT),
        "error": nullable(TEXT),
    }),
}

LOG_ENTRY = obj(
    {
        "timestamp": TIMESTAMP,
        "type": {"enum": ["agent", "system", "network"]},
        "level": {"enum": ["debug", "info", "warn", "error"]},
        "message": TEXT,
    },
    {"metadata": nullable(JSON_OBJECT)},
)
AGENT_LOG_METADATA = obj({"sequence": {"type": "integer", "minimum": 1}, "event_type": STRING})

SAMPLE = obj({
    "timestamp": TIMESTAMP,
    "cpu_percent": NUMBER,
    # the seed's fields and the platform's, both sent
    "memory_bytes": COUNT,
    # null when the run's network cannot be measured (a sandbox without network)
    "network_rx_bytes": nullable(COUNT),
    "network_tx_bytes": nullable(COUNT),
    "memory_used_mb": NUMBER,
    "memory_total_mb": NUMBER,
    "disk_used_mb": NUMBER,
    "disk_total_mb": NUMBER,
})
METRICS = obj({
    "summary": obj({
        "cpu_avg_percent": nullable(NUMBER),
        "memory_max_bytes": nullable(COUNT),
        "network_rx_bytes": nullable(COUNT),
        "network_tx_bytes": nullable(COUNT),
        "avg_cpu_percent": nullable(NUMBER),
        "max_memory_used_mb": nullable(NUMBER),
        "total_duration_ms": nullable(COUNT),
    }),
    "data": {"type": "array", "items": SAMPLE},
    "pagination": PAGINATION,
})

# -- volumes and artifacts -------------------------------------------------------------------


def storage_schemas(kind: str) -> dict[str, Schema]:
    """The schemas of one storage kind's endpoints (``volume`` or ``artifact``)."""
    owner = f"{kind}_id"
    version = obj({
        "id": VERSION_ID,
        owner: STRING,
        "size": COUNT,
        "file_count": COUNT,
        "message": nullable(TEXT),
        "created_by": STRING,
        "created_at": TIMESTAMP,
    })
    storage = obj({
        "id": STRING,
        "name": NAME,
        "current_version_id": nullable(VERSION_ID),
        "size": COUNT,
        "file_count": COUNT,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    })
    detail = {"allOf": [storage, obj({"current_version": nullable(version)})]}
    fresh = {"allOf": [storage, obj({"current_version": {"type": "null"}})]}
    upload = obj({
        "upload_session_id": STRING,
        "files": {"type": "array", "items": obj(
            {"path": STRING, "upload_url": URL, "upload_id": STRING}
        )},
        "expires_at": TIMESTAMP,
    })
    commit = obj({
        "id": VERSION_ID,
        owner: STRING,
        "files": {"type": "array", "items": obj({"path": STRING, "size": COUNT})},
        "message": nullable(TEXT),
        "created_at": TIMESTAMP,
    })
    download = obj({
        "version_id": VERSION_ID,
        "files": {"type": "array", "items": obj(
            {"path": STRING, "size": COUNT, "download_url": URL}
        )},
        "expires_at": TIMESTAMP,
    })
    return {
        "list": page_of(storage),
        "detail": detail,
        "created": fresh,
        "versions": page_of(version),
        "upload": upload,
        "commit": commit,
        "download": download,
    }
