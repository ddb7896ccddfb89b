"""Tests of the API client (``vm0_notebook.api``) against the real local server."""
