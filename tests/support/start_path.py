"""Modules the way to ``online`` must not load: checked with and without a broker."""

# Top-level packages of the stacks that must wait until they are enabled.
HOME_ASSISTANT = frozenset({"homeassistant_api", "requests", "aiohttp"})
WEB = frozenset({"fastapi", "uvicorn", "starlette", "needlecare.web"})
REPORT = frozenset({"matplotlib", "needlecare.report"})
# Loaded by the daemon, but only once its connection is under way (or never, for
# `run`): each cost milliseconds to tens of milliseconds on the way to `online`.
AFTER_CONNECT = frozenset(
    {
        "pydantic_settings",  # only with NEEDLECARE_* variables
        "babel",  # the first translated text
        "apscheduler",  # the wake-up timer
        "structlog",  # logging is configured after online (needlecare.logs.early_lines)
        "asyncio",  # structlog's
        "rich",  # structlog.dev's, when installed (schemathesis brings it)
        "needlecare.cli.output",
        "needlecare.cli.doc_commands",
        "needlecare.cli.journal_commands",
        "needlecare.cli.reminder_commands",
        "needlecare.cli.report_command",
        "needlecare.cli.session_commands",
        "needlecare.cli.store_commands",
        "needlecare.app.assembly",
        "needlecare.app.core",
        "needlecare.app.aftercare",
        "needlecare.app.ingest",
        "needlecare.domain.events",  # the inbound payload models
        "needlecare.domain.session_rules",
        "needlecare.domain.planning",
        "needlecare.i18n.render",
        "needlecare_integrations.broker",  # only with --broker
        "needlecare_integrations.homeassistant",
        "needlecare_integrations.scheduler",
    }
)
# None of these before the daemon connects.
NOT_BEFORE_CONNECT = AFTER_CONNECT | HOME_ASSISTANT | WEB | REPORT
