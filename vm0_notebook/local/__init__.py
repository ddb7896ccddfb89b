"""The embedded VM0-compatible server: ``python -m vm0_notebook.local serve``.

Nothing here imports the notebook layer; the HTTP stack loads only when the server starts.
"""
