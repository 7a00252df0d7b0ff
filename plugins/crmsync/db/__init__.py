"""The database side: everything that speaks to PostgreSQL. The statements themselves live in
``include/sql`` (:mod:`crmsync.db.sql` reads them); the customers table and the journal
(:mod:`~crmsync.db.store`), the writer lock, mass-change plans, the revert and conflict
journals, and the trigger inbox. Imports :mod:`crmsync.core` and psycopg, never Airflow or SUMIT.
"""
