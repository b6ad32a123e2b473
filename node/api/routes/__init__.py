"""One module-level router per area of the API; each route parses, calls a service or the store, answers."""
