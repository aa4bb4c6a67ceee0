"""The built-in care protocol's steps, each quoting the PRODUCT §1 rule it encodes.

Placeholders in messages are filled by planning with local, human-readable times:
{profile}, {until}, {window_start}, {window_end}, {product}, {ingredients},
{depth}, {limit}, {redness}, {day}, {missed}, {count}.

Titles and messages are English gettext message ids (``N_`` marks them for
extraction): planning shows them in the profile's language. What each step says
to a voice is in :mod:`needlecare.i18n.spoken`.
"""

from datetime import time, timedelta
from functools import cache
from types import MappingProxyType
from typing import Final

from needlecare.domain.protocol_steps import Channel, Escalation, Severity, Step
from needlecare.i18n import N_

# Shown with the protocol wherever people read it: the CLI, the docs, the report.
NOT_MEDICAL_ADVICE = N_(
    "**Not medical advice.** These defaults come from general guidance on at-home "
    "microneedling. Every step can be changed in the `protocol:` section of the config, "
    "and a dermatologist's or other professional's instructions always override them."
)

MIRROR, DASHBOARD, MOBILE, VOICE = Channel.MIRROR, Channel.DASHBOARD, Channel.MOBILE, Channel.VOICE
INFO, WARNING = Severity.INFO, Severity.WARNING
EVENING: Final = time(19, 0)

_CLEAN = "skin must be clean and free of makeup before a session"
_SOOTHE = (
    "after a session skin is sensitive, red or flushed; apply a soothing serum or cream "
    "to calm it and lock in moisture"
)
_ACTIVES = "avoid harsh/active ingredients such as retinoids or exfoliants immediately after"
_ABSORB = (
    "skin absorbs products better after a session; hyaluronic acid, peptides and "
    "antioxidants work well"
)
_REPEAT = "repeat every 4-6 weeks so the skin can recover and rebuild"
_DEVICE = "follow the manufacturer's instructions for at-home devices"

DEFAULT_INGREDIENTS: Final = MappingProxyType(
    {
        "retinoids": (
            "retinol",
            "retinal",
            "retinaldehyde",
            "tretinoin",
            "adapalene",
            "tazarotene",
            "retinyl palmitate",
            "retinoid",
        ),
        "exfoliants": (
            "glycolic acid",
            "lactic acid",
            "mandelic acid",
            "salicylic acid",
            "aha",
            "bha",
            "scrub",
            "exfoliant",
            "peel",
        ),
    }
)


def _plan() -> tuple[Step, ...]:
    return (
        Step(
            kind="soothe",
            offset=timedelta(0),
            title=N_("Soothe your skin"),
            message=N_(
                "Your skin is sensitive now. Apply a soothing serum or cream to calm it "
                "and lock in moisture."
            ),
            severity=WARNING,
            channels=(MIRROR, DASHBOARD),
            needs_ack=True,
            escalation=(
                Escalation(after=timedelta(minutes=30), channels=(VOICE,)),
                Escalation(after=timedelta(hours=2), channels=(MOBILE,)),
            ),
            source=_SOOTHE,
        ),
        Step(
            kind="serum_window",
            offset=timedelta(minutes=30),
            title=N_("Serum time"),
            message=N_(
                "Your skin absorbs products better right now: hyaluronic acid, peptides "
                "and antioxidants work well."
            ),
            channels=(MIRROR, DASHBOARD),
            expires_after=timedelta(hours=2),
            source=_ABSORB,
        ),
        Step(
            kind="actives_pause",
            offset=timedelta(0),
            title=N_("Pause actives"),
            message=N_("No retinoids or exfoliants until {until}."),
            channels=(MIRROR, DASHBOARD),
            expires_after=timedelta(hours=12),
            source=_ACTIVES,
        ),
        Step(
            kind="actives_resume",
            title=N_("Actives allowed again"),
            message=N_("The pause is over: retinoids and exfoliants are fine again."),
            channels=(MIRROR, DASHBOARD),
            expires_after=timedelta(hours=12),
            source=_ACTIVES,
        ),
        Step(
            kind="window_open",
            day=28,
            at=EVENING,
            title=N_("Next session window open"),
            message=N_(
                "Your next session is due between {window_start} and {window_end}. "
                "Start with skin that is clean and free of makeup."
            ),
            channels=(MIRROR, DASHBOARD, MOBILE),
            source=f"{_REPEAT}; {_CLEAN}",
        ),
        Step(
            kind="overdue",
            day=42,
            at=EVENING,
            title=N_("Session overdue"),
            message=N_("The 4-6 week window closed on {window_end}. Plan your next session."),
            severity=WARNING,
            channels=(MIRROR, DASHBOARD, MOBILE),
            source=_REPEAT,
        ),
    )


def _guards() -> tuple[Step, ...]:
    return (
        Step(
            kind="too_soon",
            title=N_("Too soon for another session"),
            message=N_(
                "Your skin is still recovering; the next session window opens {window_start}."
            ),
            severity=WARNING,
            channels=(MIRROR, VOICE),
            expires_after=timedelta(hours=2),
            source=_REPEAT,
        ),
        Step(
            kind="depth_limit",
            title=N_("Needle depth above the device limit"),
            message=N_(
                "{depth} mm is deeper than this device allows ({limit} mm). Follow the "
                "manufacturer's instructions."
            ),
            severity=WARNING,
            channels=(MIRROR, VOICE),
            expires_after=timedelta(hours=2),
            source=_DEVICE,
        ),
        Step(
            kind="restricted_product",
            title=N_("Avoid {product} for now"),
            message=N_("{product} contains {ingredients}; avoid them until {until}."),
            severity=WARNING,
            channels=(MIRROR, DASHBOARD, VOICE),
            expires_after=timedelta(hours=4),
            source=_ACTIVES,
        ),
        Step(
            kind="redness_advice",
            title=N_("Skin still red"),
            message=N_(
                "Redness is still {redness}/100 on day {day}. Keep soothing and "
                "moisturising; if it persists, ask a professional."
            ),
            channels=(MIRROR, DASHBOARD),
            expires_after=timedelta(hours=12),
            source=_SOOTHE,
        ),
        Step(
            kind="cleanse_first",
            title=N_("Cleanse first"),
            message=N_("Start with skin that is clean and free of makeup."),
            channels=(MIRROR,),
            expires_after=timedelta(minutes=30),
            source=_CLEAN,
        ),
        Step(
            kind="missed_summary",
            title=N_("Missed reminders"),
            message=N_("{missed}"),
            channels=(MIRROR, DASHBOARD),
            expires_after=timedelta(hours=12),
            source="reminders due while the daemon was down are delivered late or summarised once",
        ),
    )


def default_steps() -> dict[str, Step]:
    """Every step of the default protocol, by name, plan steps first."""
    return {step.kind: step for step in _built()}


@cache
def _built() -> tuple[Step, ...]:
    # Validated on first use, not at import: the config imports the protocol's
    # types at every start, long before a plan is made (docs/PERFORMANCE.md, Start).
    return (*_plan(), *_guards())
