"""The web app and JSON API the daemon serves when ``web.enabled`` (imported only then)."""
