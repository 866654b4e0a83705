"""The model store proper: registries (directory, MLflow), bundles on disk, model cards.

``open_registry`` lives here, above both registries, so neither imports the other's module
and the base class imports neither.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from models_store.errors import ModelStoreError
from models_store.registry.base import URI_FORMS, ModelRegistry
from models_store.registry.filesystem import FilesystemRegistry


def open_registry(uri: str) -> ModelRegistry:
    """The registry at ``uri``: a directory path, ``file:///dir`` or ``mlflow+sqlite:///db``."""
    if uri.startswith(("mlflow+sqlite:", "sqlite:")):
        # Imported on use: MLflow takes seconds to import, and most users never need it.
        from models_store.registry.mlflow import MlflowRegistry

        return MlflowRegistry(sqlite_path(uri))
    return FilesystemRegistry(directory_path(uri))


def directory_path(uri: str) -> Path:
    """The directory of a filesystem registry URI (a path or ``file:///abs/dir``)."""
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost") or not parts.path or parts.query:
            raise ModelStoreError(f"registry {uri!r}: a file URI looks like file:///abs/dir")
        return Path(unquote(parts.path))
    if not uri.strip() or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
        raise ModelStoreError(f"unsupported model registry {uri!r}: use {URI_FORMS}")
    return Path(uri)


def sqlite_path(uri: str) -> Path:
    """The database file of ``[mlflow+]sqlite:///path`` (SQLAlchemy's form: four slashes
    before an absolute path, three before a relative one), made absolute."""
    rest = uri.removeprefix("mlflow+")
    path = rest.removeprefix("sqlite:///")
    if path == rest or not path or "?" in path:
        raise ModelStoreError(
            f"registry {uri!r}: an MLflow registry needs a database file, "
            "e.g. mlflow+sqlite:////abs/path/mlflow.db or mlflow+sqlite:///relative/mlflow.db"
        )
    return Path(path).resolve()
