"""Errors of training and the registry: each says what went wrong and how to fix it."""


class ModelStoreError(Exception):
    """An expected failure (bad input, missing version, tampered artifact); one line for the CLI."""

    exit_code = 2


class ModelNotFoundError(ModelStoreError):
    """No such model name, version or alias in the registry."""


class VersionExistsError(ModelStoreError):
    """A version of that name is already registered: versions are immutable."""


class ArtifactIntegrityError(ModelStoreError):
    """An artifact is missing or its sha256 differs from the model card: never loaded."""


class InvalidBundleError(ModelStoreError):
    """A model bundle directory that is not a bundle (no card, unreadable card, stray files)."""


class FeatureMismatchError(ModelStoreError):
    """The model was trained on other features than the running feature code computes."""


class TrainingDataError(ModelStoreError):
    """The event history cannot produce a training set (empty, too short for the horizon)."""
