"""The migration report: what the source held, what was copied, every check, and the outcome,
as an object and as the JSON file ``--report`` writes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from ...errors import LoomError
from ...model import JSONObject
from .checks import Check
from .copying import SurveyDict

__all__ = ["MigrationReport", "ReportDict"]

ErrorDict = dict[str, str | int]  # LoomError.to_dict(): code, message, status


class ReportDict(TypedDict):
    """``MigrationReport.to_dict()``: the JSON file ``--report`` writes."""

    ok: bool
    mode: str
    source: str
    destination: str
    resumed: bool
    started: float
    seconds: float
    source_counts: SurveyDict
    copied: dict[str, int]
    jobs_queued: int
    destination_state: str | None
    checks: list[JSONObject]
    rolled_back: bool
    error: ErrorDict | None
    notes: list[str]


@dataclass
class MigrationReport:
    """The outcome of ``migrate`` or ``validate_migration``.

    ``ok`` is True when nothing failed and every check passed. ``rolled_back`` says the
    destination was put back as it was before the migration; ``destination_state`` is what a
    dry run found there (``new``, ``empty``, ``resumable``...).
    """

    source: str
    destination: str
    mode: str = "migrate"  # migrate | dry-run | validate
    resumed: bool = False
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    survey: SurveyDict = field(default_factory=SurveyDict)
    copied: dict[str, int] = field(default_factory=dict)
    jobs_queued: int = 0
    destination_state: str | None = None
    checks: list[Check] = field(default_factory=list)
    rolled_back: bool = False
    error: ErrorDict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(check.ok for check in self.checks)

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def fail(self, exc: BaseException) -> None:
        """Record the error that stopped the migration."""
        if isinstance(exc, LoomError):
            self.error = exc.to_dict()
        else:
            self.error = {"code": type(exc).__name__, "message": str(exc), "status": 500}

    def to_dict(self) -> ReportDict:
        return {
            "ok": self.ok, "mode": self.mode, "source": self.source,
            "destination": self.destination, "resumed": self.resumed,
            "started": self.started, "seconds": round(self.seconds, 3),
            "source_counts": self.survey, "copied": self.copied,
            "jobs_queued": self.jobs_queued, "destination_state": self.destination_state,
            "checks": [check.to_dict() for check in self.checks],
            "rolled_back": self.rolled_back, "error": self.error, "notes": self.notes,
        }

    def write(self, path: str | Path) -> None:
        """Write the report as JSON; ``LoomError`` if the file cannot be written."""
        try:
            Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False,
                                             default=str) + "\n", encoding="utf-8")
        except OSError as exc:
            raise LoomError(f"cannot write the migration report to {path}: {exc}") from exc
