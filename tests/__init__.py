"""The test suite: the real local server over real HTTP, and real notebooks in a real kernel."""
