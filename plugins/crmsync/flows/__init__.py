"""How a sync moves: one module per flow, joining the SUMIT client and the store.

- :mod:`crmsync.flows.pull`: every CRM customer into the table, a page at a time;
- :mod:`crmsync.flows.push`: chosen or changed local customers to SUMIT, several at once;
- :mod:`crmsync.flows.lost_creates`: customers a killed run created in SUMIT, found again;
- :mod:`crmsync.flows.read_ahead`: the next page fetched while the database merges this one;
- :mod:`crmsync.flows.common`: what the flows share (the client they need, the clock).

No Airflow here: the operators hand in a client (SumitHook), a store (CustomerStore) and a
logger, so the same flows run in tests, in the benchmark and in any scheduler.
"""
