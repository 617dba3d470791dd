"""The canonical multi-behavior log that every loader returns and every later stage reads.

A :class:`Log` holds one row per interaction, in a fixed behavior vocabulary, plus optional item and
user feature tables. Ordering is by timestamp with ties broken by the original file order (``order``),
because the public logs have day-level timestamps and the file order is the only order inside a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.errors import BenchError

BEHAVIORS: tuple[str, ...] = ("click", "fav", "cart", "buy")
"""The fixed behavior vocabulary; a behavior's code is its index here."""
BUY: int = BEHAVIORS.index("buy")
"""The conversion behavior's code."""

INTERACTION_COLUMNS: tuple[str, ...] = ("user", "item", "behavior", "timestamp", "order")


@dataclass(frozen=True)
class Log:
    """A validated interaction log.

    Attributes:
        interactions: columns ``user`` and ``item`` (raw ids: integers, int32 where they fit, or strings),
            ``behavior`` (int8 code into :data:`BEHAVIORS`), ``timestamp`` (unix seconds, int32 where they
            fit, else int64), ``order`` (original row position, the tie-breaker; int32 where it fits).
        items: item features indexed by raw item id; integer-coded columns (category, brand, seller, …).
        users: user features indexed by raw user id; integer-coded columns (gender, age, …).
        source: where the log came from, for messages and provenance.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    source: str
    preparation: Mapping[str, Any] = field(default_factory=dict)
    """What reading and preprocessing did: ``dropped`` (step → rows), ``coverage`` (side file → share of the
    log's ids it describes), ``warnings`` (missing optional columns or files)."""

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise ValueError(f"Log.interactions lacks columns {missing}")  # a bug in a loader, not input
        if len(self.interactions) == 0:
            raise BenchError(f"{self.source}: the log has no interactions")

    def sorted(self) -> pd.DataFrame:
        """Interactions sorted by (user, timestamp, order): each user's history in time order."""
        return self.interactions.sort_values(["user", "timestamp", "order"], kind="stable", ignore_index=True)

    def with_interactions(self, interactions: pd.DataFrame, dropped_by: str | None = None) -> Log:
        """The same log with a filtered interaction table (feature tables are kept as they are); with
        ``dropped_by``, the rows it lost are counted under that step's name."""
        preparation = dict(self.preparation)
        if dropped_by is not None:
            preparation["dropped"] = {**preparation.get("dropped", {}), dropped_by: len(self.interactions) - len(interactions)}
        return Log(interactions.reset_index(drop=True), self.items, self.users, self.source, preparation)
