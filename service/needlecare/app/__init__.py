"""The application: ingest, lifecycle and the composition root."""
