"""A bounded, least-recently-used cache of decoded client states."""

from __future__ import annotations

from collections import OrderedDict

from features.state import ClientState


class StateCache:
    """Client id -> ``ClientState``, holding at most ``capacity`` clients (0 disables it)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, ClientState] = OrderedDict()

    def get(self, client_id: str) -> ClientState | None:
        """The cached state, marked as recently used, or ``None``."""
        state = self._states.get(client_id)
        if state is not None:
            self._states.move_to_end(client_id)
        return state

    def put(self, client_id: str, state: ClientState) -> None:
        """Cache ``state``, evicting the least recently used beyond the capacity."""
        if self._capacity <= 0:
            return
        self._states[client_id] = state
        self._states.move_to_end(client_id)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)

    def discard(self, client_id: str) -> None:
        """Forget one client (e.g. erased)."""
        self._states.pop(client_id, None)

    def clear(self) -> None:
        """Forget every client."""
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)
