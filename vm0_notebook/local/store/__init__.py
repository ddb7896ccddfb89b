"""SQLite tables, blobs, signing: may import local.errors and contract; no starlette, no web."""
