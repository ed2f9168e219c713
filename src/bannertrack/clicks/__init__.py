"""A click's path: from a request to a stored, counted click."""
