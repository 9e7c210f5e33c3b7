"""The data-centric review loop's record: a person's decisions on clips, and their effect.

A reviewer keeps, excludes or fixes clips whose label looks wrong; ``decisions`` keeps those
decisions in a git-tracked TSV (strict reader, locked atomic writer), ``apply`` applies them
to the validated manifests (excluded rows quarantined, fixed sentences in place, all or
nothing) and turns the top of a ranked review queue into automatic exclusions.
"""

from swedish_transcriber.data.curation.apply import (
    AUTO_PREFIX,
    AUTO_TIME,
    ORIGINAL_COLUMN,
    STAGE,
    apply_decisions,
    auto_exclude,
    check_decisions,
)
from swedish_transcriber.data.curation.decisions import (
    ACTIONS,
    HEADER,
    Decision,
    DecisionsError,
    InvalidDecision,
    lock_file,
    locked,
    read_decisions,
    record_decision,
    utc_now,
    write_decisions,
)

__all__ = [
    "ACTIONS",
    "AUTO_PREFIX",
    "AUTO_TIME",
    "HEADER",
    "ORIGINAL_COLUMN",
    "STAGE",
    "Decision",
    "DecisionsError",
    "InvalidDecision",
    "apply_decisions",
    "auto_exclude",
    "check_decisions",
    "lock_file",
    "locked",
    "read_decisions",
    "record_decision",
    "utc_now",
    "write_decisions",
]
