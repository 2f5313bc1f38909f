"""The shared hub over HTTP: accounts (organisations, users, roles, tokens) and the API server."""
