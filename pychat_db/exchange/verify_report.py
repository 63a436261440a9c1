"""What a verification found (`pychat_db.exchange.verify`): per-collection tallies, mismatches, the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from pychat_db.errors import PychatDbError

DETAILED_PER_COLLECTION = 20  # differing rows whose fields are named
LISTED_PER_KIND = 20  # mismatches of one kind listed per collection (all are counted)


class VerifyError(PychatDbError):
    """Verification could not run: the export is unreadable or invalid, or the database unusable."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference: `collection key: field: detail` (field None for the whole row)."""

    collection: str
    key: str
    field: str | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.collection} {self.key}"
        return f"{where}: {self.field}: {self.detail}" if self.field else f"{where}: {self.detail}"


@dataclass(slots=True)
class CollectionCheck:
    collection: str
    export_rows: int = 0
    db_rows: int = 0
    matching: int = 0
    only_in_export: int = 0
    only_in_db: int = 0
    differing: int = 0
    broken_links: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.export_rows == self.db_rows == self.matching and not (
            self.only_in_export or self.only_in_db or self.differing or self.broken_links
        )


@dataclass(slots=True)
class VerifyReport:
    export: str
    db: str
    collections: list[CollectionCheck] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)
    samples_requested: int = 0
    samples_checked: int = 0
    sample_mismatches: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            all(c.ok for c in self.collections)
            and not self.manifest_problems
            and not self.sample_mismatches
            and not self.mismatches
        )

    @property
    def rows(self) -> int:
        return sum(c.export_rows for c in self.collections)
