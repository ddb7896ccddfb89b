"""Tests of the embedded local server (``vm0_notebook.local``) over real HTTP."""
