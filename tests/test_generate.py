"""The scale generator: deterministic, the lake's layout, every kind of line, and a landing set
the pipeline's contracts agree with (checked against the independent oracle)."""

import hashlib

from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.generate import generate_landing
from tests import oracle


def _digest(folder):
    files = sorted(p for p in folder.rglob("*.json"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate_landing(tmp_path / "a", customers=300, seed=5)
    generate_landing(tmp_path / "b", customers=300, seed=5)
    generate_landing(tmp_path / "c", customers=300, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_summary_matches_the_files_and_the_oracle(tmp_path):
    summary = generate_landing(tmp_path, customers=400, seed=1, bad_share=0.01)
    for dataset, d in summary["datasets"].items():
        files = (tmp_path / dataset).rglob("*.json")
        lines = [line for f in files for line in f.read_text().splitlines()]
        assert len(lines) == d["lines"]
        assert d["bad_lines"] > 0 and d["blank_lines"] > 0
    counts = oracle.expected_counts(tmp_path, "privacy")
    for dataset in ("customer", "accelerometer", "step_trainer"):
        d = summary["datasets"][dataset]
        assert counts[f"{dataset}_quarantine"] == d["bad_lines"]
        assert counts[f"{dataset}_landing"] == d["records"] - d["bad_lines"]
    exclusions = oracle.expected_exclusions(tmp_path, "privacy")
    assert exclusions["step_trainer"]["ambiguous device"] > 0
    assert exclusions["accelerometer"]["before consent"] > 0
    assert exclusions["customer"]["superseded"] > 0


def test_cli_generate_prints_what_it_wrote(tmp_path):
    result = CliRunner().invoke(app, ["generate", "--customers", "50", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "accelerometer" in result.stdout and (tmp_path / "customer").is_dir()
