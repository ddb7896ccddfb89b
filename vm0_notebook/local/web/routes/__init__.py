"""One module of route handlers per resource, each with its table of literal paths."""
