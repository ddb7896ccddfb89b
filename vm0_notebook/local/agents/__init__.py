"""Kept only for the old module path of the echo agent (see ``echo.py``); nothing lives here."""
