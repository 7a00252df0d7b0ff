"""What faces Airflow and is shared by DAG files, operators and the console: deployment
settings read from the environment, the DAGs' run params, the run notifier, the trigger
receiver's connection settings, and workarounds for Airflow's in-process runner.
"""
