"""The ledger: SQL models and migrations (models, db), the batched writer with its spool
(writer, spool, store, rollups), read queries (queries) and histogram bounds (buckets).

Kept free of imports so that `ledger.record` stays light for every package that builds records.
"""
