"""The drift windows a worker keeps: one per model version, arm and experiment (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from models_store.monitoring.window import DriftLayout, DriftWindow, prune
from models_store.registry.card import ModelCard


@dataclass(frozen=True)
class DriftKey:
    """Whose scored rows a window counts (``arm``: champion when no experiment runs)."""

    model: str
    arm: str
    experiment_id: str | None


@dataclass
class DriftBook:
    """Windows by key, made on a model's first scored rows; a model whose card has no drift
    reference (an older card) gets none."""

    days: int
    windows: dict[DriftKey, DriftWindow] = field(default_factory=dict)
    _layouts: dict[str, DriftLayout | None] = field(default_factory=dict)

    def window(self, card: ModelCard, arm: str, experiment_id: str | None) -> DriftWindow | None:
        """The window of ``card``'s model in ``arm`` (None: no reference to measure against)."""
        key = DriftKey(card.ref, arm, experiment_id)
        window = self.windows.get(key)
        if window is not None:
            return window
        if card.ref not in self._layouts:
            reference = card.drift_reference
            self._layouts[card.ref] = (
                None if reference is None else DriftLayout.of(reference, card.feature_names)
            )
        layout = self._layouts[card.ref]
        if layout is None:
            return None
        window = self.windows[key] = DriftWindow(layout, self.days)
        return window

    def prune(self) -> list[DriftKey]:
        """Forget the windows no row reached for a whole window (``window.prune``)."""
        stale = prune(self.windows)
        live = {key.model for key in self.windows}
        for model in [m for m in self._layouts if m not in live]:
            del self._layouts[model]
        return stale
