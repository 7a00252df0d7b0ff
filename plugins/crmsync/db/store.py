"""The customers database: every read and write the sync makes, batched, SQL from include/sql.

:class:`CustomerStore` is one object for its callers, written in files along the lines its
callers split on: :mod:`crmsync.db.session` (connection, transactions, journal, schema, error
queue, run row, writer lock), :mod:`crmsync.db.pull_statements` (a pulled page, the decisions,
vanished customers), :mod:`crmsync.db.push_statements` (candidates, marks, lost creates) and
:mod:`crmsync.db.match_statements` (matching customers both sides hold, a person's decisions).
"""

from __future__ import annotations

from crmsync.db.match_statements import MatchStatements
from crmsync.db.pull_statements import PullStatements, decode_rows, encode_rows
from crmsync.db.push_statements import PushStatements
from crmsync.db.session import ErrorRow, GaveUp, RunRef

__all__ = ["CustomerStore", "ErrorRow", "GaveUp", "RunRef", "decode_rows", "encode_rows"]


class CustomerStore(PullStatements, PushStatements, MatchStatements):
    """Every read and write of one task's work on the customers database (see the modules above)."""
