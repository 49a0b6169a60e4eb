"""The subscriber service: read predictions (and dead letters) for people, scripts and caches."""
