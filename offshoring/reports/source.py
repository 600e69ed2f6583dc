"""Where the numbers come from: real IMEFAS/AIDA files or the project's synthetic generator.

Every output says it: the source line under each table, the caption (and the foot) of
each figure, a banner on ``index.html``, the asset metadata and the provenance record
(``"data": "synthetic"`` or ``"real"``). The origin is decided by the caller (the
pipeline's demo mode, ``Folders.synthetic``) and passed in; nothing here guesses it.
"""

from __future__ import annotations

from dataclasses import dataclass

SYNTHETIC = "synthetic"
REAL = "real"


@dataclass(frozen=True)
class DataSource:
    """The origin of the data behind an output.

    synthetic  True: the generator's synthetic files (the demo mode); False: real files
    seed       the generator's seed, when known (synthetic data only)
    """

    synthetic: bool
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.synthetic, bool):
            raise TypeError("DataSource.synthetic must be True or False (the demo mode, asked for explicitly)")

    @classmethod
    def of(cls, synthetic: bool, seed: int | None = None) -> "DataSource":
        return cls(bool(synthetic), None if not synthetic or seed is None else int(seed))

    @property
    def data(self) -> str:
        """``"synthetic"`` or ``"real"`` (what provenance and metadata record)."""
        return SYNTHETIC if self.synthetic else REAL

    @property
    def seed_text(self) -> str:
        return f"seed {self.seed}" if self.seed is not None else "seed unknown"

    def line(self) -> str:
        """The source line of a table or figure (printed after ``Source:``)."""
        if self.synthetic:
            return f"synthetic data from the project's generator ({self.seed_text}), not IMEFAS/AIDA"
        return "elaborations on IMEFAS and AIDA data (this run)"

    def caption_suffix(self) -> str:
        """What a figure caption ends with."""
        return f"Source: {self.line()}."

    def banner(self) -> str | None:
        """The warning shown at the top of the index page (None for real data)."""
        if not self.synthetic:
            return None
        return (
            f"Synthetic data: every number on this page comes from the project's generator "
            f"({self.seed_text}), not from IMEFAS or AIDA. The outputs show that the pipeline "
            "works; they say nothing about Italian firms."
        )
