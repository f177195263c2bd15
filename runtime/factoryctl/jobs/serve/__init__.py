"""`factoryctl serve`: HTTP triggers, the read API, the GitHub webhook and the status page."""
