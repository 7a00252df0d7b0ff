"""The pure sync logic: the vocabulary (model, errors, text), mapping SUMIT's records to rows,
fingerprints, the merge and its field rules, conflict decisions, the mass-change guard, run
summaries, SUMIT's trigger bodies and the asset's naming.

Usable without Airflow, a database or the network: nothing here imports ``airflow``,
``psycopg``, an HTTP client or another crmsync layer (tests/unit/test_shape.py checks it).
"""
