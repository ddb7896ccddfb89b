"""The IPython side: the ``%vm0`` magics, live views, widgets and renderers."""
