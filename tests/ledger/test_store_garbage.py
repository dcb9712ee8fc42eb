"""A batch write leaves no cyclic garbage: the gateway writes about one batch a second, and
whatever the writer leaves in reference cycles is walked and freed by the garbage
collector, which stops the gateway's event loop while it runs."""

import gc

from sqlalchemy import Engine

from ledger.buckets import normalize
from ledger.store import write_records
from ledger.testing import random_records


def test_a_batch_write_leaves_no_cyclic_garbage(ledger_engine: Engine):
    bounds = normalize(None)
    batches = [random_records(50, seed=s) for s in range(7)]
    for batch in batches[:2]:  # the first writes compile and cache their statements
        with ledger_engine.begin() as c:
            write_records(c, batch, bounds)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for batch in batches[2:]:
            with ledger_engine.begin() as c:
                assert len(write_records(c, batch, bounds)) == 50
        gc.collect()
        kinds = sorted({type(o).__name__ for o in gc.garbage})
        per_batch = len(gc.garbage) / 5
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    # Each upsert built anew made an `excluded` alias of its table: ~730 objects a batch.
    # What is left (PostgreSQL's id lookup: a bound IN parameter) is a handful.
    assert per_batch < 20, (per_batch, kinds)
