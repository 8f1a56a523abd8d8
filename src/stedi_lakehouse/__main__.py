"""`python -m stedi_lakehouse ...` and the spark-submit entry point (`dist/stedi_job.py`):
the stedi-lake CLI, e.g. `spark-submit ... stedi_job.py run --profile emr`."""

from stedi_lakehouse.cli import app

if __name__ == "__main__":
    app(prog_name="stedi-lake")
