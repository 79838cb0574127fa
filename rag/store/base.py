"""Vector-store interface: one file per backend (FAISS embedded; others plug in here)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class VectorStore(ABC):
    """Inner-product search over unit vectors; row ``i`` of the built matrix has id ``i``."""

    backend: str = "base"

    @abstractmethod
    def build(self, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (len(queries), k); missing hits have id -1; rows in ``exclude``
        (tombstones) are never returned."""

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> VectorStore: ...

    @abstractmethod
    def __len__(self) -> int: ...

    def describe(self) -> dict:
        """Parameters recorded in the manifest."""
        return {"backend": self.backend}
