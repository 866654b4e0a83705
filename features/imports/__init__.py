"""Tabular exports (CSV or Parquet of invoices, payments, tickets...) into a validated event
log: the mapping file (``mapping``), the reading of one cell (``cells``), what each kind of
export makes (``kinds``) and the conversion of a table into events (``conversion``)."""
