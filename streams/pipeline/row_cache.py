"""A bounded, least-recently-used cache of decoded client rows."""

from __future__ import annotations

from collections import OrderedDict

from streams.pipeline.client_row import ClientRow


class RowCache:
    """Client id -> ``ClientRow``, holding at most ``capacity`` clients (0 disables it)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._rows: OrderedDict[str, ClientRow] = OrderedDict()

    def get(self, client_id: str) -> ClientRow | None:
        """The cached row, marked as recently used, or ``None``."""
        row = self._rows.get(client_id)
        if row is not None:
            self._rows.move_to_end(client_id)
        return row

    def put(self, row: ClientRow) -> None:
        """Cache ``row``, evicting the least recently used beyond the capacity."""
        if self._capacity <= 0:
            return
        self._rows[row.client_id] = row
        self._rows.move_to_end(row.client_id)
        while len(self._rows) > self._capacity:
            self._rows.popitem(last=False)

    def discard(self, client_id: str) -> None:
        """Forget one client (e.g. erased)."""
        self._rows.pop(client_id, None)

    def clear(self) -> None:
        """Forget every client."""
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)
