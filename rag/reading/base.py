"""The reader interface: question + retrieved passages in, scored answer spans out.

Readers are cheap to construct; ``warm_up()`` loads models once (at start-up or on first use),
never per request.  Offsets in the returned spans index ``retrieved.paragraph.text``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from rag.types import ReaderOutput, RetrievedPassage


class Reader(ABC):
    #: Human-readable reader name, reported in manifests and eval reports.
    name: str = "reader"
    #: Score below which the pipeline abstains unless settings override it.
    default_threshold: float = 0.5

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load models; idempotent."""

    @abstractmethod
    def read(self, question: str, passages: Sequence[RetrievedPassage], top_n: int = 3) -> ReaderOutput:
        """Return up to ``top_n`` answer spans, best first, across all ``passages``."""

    def read_batch(
        self, questions: Sequence[str], passages: Sequence[Sequence[RetrievedPassage]], top_n: int = 3
    ) -> list[ReaderOutput]:
        """Read many questions at once; model readers override this to batch forward passes."""
        return [self.read(q, p, top_n) for q, p in zip(questions, passages, strict=True)]
