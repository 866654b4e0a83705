"""Whether testcontainers can be used: only with a reachable Docker engine."""

from __future__ import annotations

from streams.errors import ProfitstreamError


def require_docker() -> None:
    """Fail clearly when no Docker engine answers (the docker CLI alone is not enough)."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # the docker SDK raises many unrelated types for "no engine"
        raise ProfitstreamError(
            f"no Docker engine reachable ({type(exc).__name__}); choose tansu or apache instead"
        ) from exc
