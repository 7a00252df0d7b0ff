"""crmsync's Airflow operators."""

from crmsync.airflow_side.airflow_compat import omit_mask_secret_bodies_in_process, run_dag_callbacks_despite_required_params_in_process

# Task code imports this package before any connection is read, so the workaround is in
# place before Airflow masks (and, in-process, would log) the SUMIT API key.
omit_mask_secret_bodies_in_process()
# `airflow dags test` parses the DAG files (and so imports this) before it runs the DAG.
run_dag_callbacks_despite_required_params_in_process()
