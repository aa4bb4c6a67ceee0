"""The effective care protocol as Markdown: what ``needlecare protocol`` prints.

docs/care-protocol.md embeds this output for the built-in protocol, and a test
keeps the two identical, so the documentation cannot drift from the code.
"""

from datetime import timedelta

from needlecare.domain.protocol import GUARD_STEPS, CareProtocol, Step


def duration(delta: timedelta) -> str:
    """Human text for a duration: 72 h, 30 min, 28 days."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0"
    if seconds % 86400 == 0 and seconds >= 7 * 86400:
        days = seconds // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def when(name: str, step: Step, protocol: CareProtocol) -> str:
    if name in GUARD_STEPS:
        return "at once, when triggered"
    if name == "actives_resume":
        return f"end of the actives pause (+{duration(protocol.actives_pause)})"
    if step.offset is not None:
        return "at the session end" if not step.offset else f"+{duration(step.offset)}"
    return f"day {step.day}, {step.at:%H:%M} local"


def _row(name: str, step: Step, protocol: CareProtocol) -> str:
    ladder = "; ".join(
        f"+{duration(e.after)}: {', '.join(c.value for c in e.channels)}" for e in step.escalation
    )
    cells = [
        f"`{name}`" + ("" if step.enabled else " (off)"),
        when(name, step, protocol),
        ", ".join(c.value for c in step.channels),
        step.severity.value,
        "yes" if step.needs_ack else "no",
        ladder or "-",
        duration(step.expires_after) if step.expires_after else "-",
        step.source or "-",
    ]
    return "| " + " | ".join(cells) + " |"


def protocol_markdown(protocol: CareProtocol, *, title: str) -> str:
    """Steps and parameters of one protocol as Markdown tables."""
    lines = [
        f"### {title}",
        "",
        "| step | when | channels | severity | needs ack | escalation | expires | source rule |",
        "|---|---|---|---|---|---|---|---|",
        *(_row(name, step, protocol) for name, step in protocol.steps.items()),
        "",
        "| parameter | value |",
        "|---|---|",
        f"| actives pause | {duration(protocol.actives_pause)} |",
        f"| next-session window | +{duration(protocol.window_open_after)}"
        f" to +{duration(protocol.window_close_after)} |",
        f"| redness advice | redness >= {protocol.redness_threshold}"
        f" from recovery day {protocol.redness_after_day} |",
        f"| a cleanse counts if within | {duration(protocol.cleanse_within)} before the start |",
        "| steps recorded as missed when planned more than"
        f" | {duration(protocol.plan_grace)} late |",
    ]
    for name, synonyms in protocol.restricted_ingredients.items():
        lines.append(f"| restricted: {name} | {', '.join(synonyms)} |")
    return "\n".join(lines) + "\n"
