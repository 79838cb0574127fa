"""Optional extras of the package, and one clear error when a command needs one that is missing.

The service (index, ask, serve) runs on the core install.  Evaluation, benchmarks and the Milvus
backend need packages that the core install leaves out (about 300 MB with their dependencies);
the commands that use them check here first, before any model is loaded or any passage embedded,
so a missing extra costs one line of output instead of minutes of work and a traceback.
"""
from __future__ import annotations

import importlib.util

from rag.errors import RagError

# extra name -> the import names it provides (as listed in pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "eval": ("ir_measures", "matplotlib"),
    "bench": ("psutil", "matplotlib"),
    "milvus": ("pymilvus", "milvus_lite"),
    "mcp": ("mcp",),
}
# What a user types to add one (the README installs the package from a clone, editable).
INSTALL_HINT = 'pip install -e ".[{extra}]"'


class MissingExtra(RagError):
    """A command needs an optional extra that is not installed."""


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The import names of ``extra`` (or just ``modules`` of it) that cannot be imported."""
    names = modules if modules is not None else EXTRAS[extra]
    return [name for name in names if importlib.util.find_spec(name) is None]


def require(extra: str, purpose: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` when any of its packages is absent."""
    absent = missing(extra, modules)
    if absent:
        raise MissingExtra(
            f"{purpose} needs the optional extra [{extra}] (missing: {', '.join(absent)}); "
            f"install it with: {INSTALL_HINT.format(extra=extra)}"
        )


def require_vector_backend(backend: str, milvus_uri: str) -> None:
    """RAG_VECTOR_BACKEND=milvus needs pymilvus; a local file URI (Milvus Lite) needs milvus_lite too."""
    if backend != "milvus":
        return
    remote = "://" in milvus_uri  # the same test as rag.store.milvus_store.is_local (empty = local file)
    modules = ("pymilvus",) if remote else ("pymilvus", "milvus_lite")
    require("milvus", "RAG_VECTOR_BACKEND=milvus", modules)
