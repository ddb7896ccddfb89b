"""Tests of the notebook side (``vm0_notebook.notebook``) in real IPython kernels."""
