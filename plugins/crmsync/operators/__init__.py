"""crmsync's Airflow operators."""

from crmsync.airflow_compat import omit_mask_secret_bodies_in_process

# Task code imports this package before any connection is read, so the workaround is in
# place before Airflow masks (and, in-process, would log) the SUMIT API key.
omit_mask_secret_bodies_in_process()
