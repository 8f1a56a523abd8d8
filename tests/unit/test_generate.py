"""The scale generator: deterministic, the lake's layout, every kind of line, and a landing set
the pipeline's contracts agree with (checked against the independent oracle); with the edge
cases, the bundled sample, which must be exactly what `make sample` generates."""

import hashlib
import json
import shlex

import pytest
from typer.testing import CliRunner

from devdata import generate
from devdata.__main__ import app
from devdata.edge_cases import build_edge_cases
from devdata.generate import generate_landing
from tests import oracle
from tests.helpers import ROOT, SAMPLE


def _digest(folder):
    files = sorted(p for p in folder.rglob("*.json"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


@pytest.mark.parametrize("edge_cases", [False, True])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, edge_cases):
    generate_landing(tmp_path / "a", customers=300, seed=5, edge_cases=edge_cases)
    generate_landing(tmp_path / "b", customers=300, seed=5, edge_cases=edge_cases)
    generate_landing(tmp_path / "c", customers=300, seed=6, edge_cases=edge_cases)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


@pytest.mark.parametrize("edge_cases", [False, True])
def test_summary_matches_the_files_and_the_oracle(tmp_path, edge_cases):
    summary = generate_landing(
        tmp_path, customers=400, seed=1, bad_share=0.01, edge_cases=edge_cases
    )
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
    result = CliRunner().invoke(app, ["--customers", "50", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "accelerometer" in result.stdout and (tmp_path / "customer").is_dir()


def test_edge_cases_are_written_as_built_beside_a_population_of_other_people(tmp_path):
    """With edge_cases the generator writes the hand-built set's files unchanged, and no
    generated e-mail address or serial number is one of the edge cases'."""
    generate_landing(tmp_path, customers=300, seed=3, ambiguous_share=0.05, edge_cases=True)
    cases = build_edge_cases(3)
    theirs = {}
    for dataset, files in cases.files.items():
        for name, lines in files.items():
            assert (tmp_path / dataset / name).read_text() == "\n".join(lines) + "\n"
            theirs[f"{dataset}/{name}"] = lines
    generated = set()
    for path in sorted(tmp_path.rglob("*.json")):
        if path.relative_to(tmp_path).as_posix() in theirs:
            continue
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                values = (record.get(k) for k in ("email", "user", "serialNumber"))
                generated |= {v for v in values if isinstance(v, str)}
    assert len(generated) > 300
    fields = ("email", "user", "serialNumber")
    edge_ids = set().union(*(cases.identifiers(name) for name in fields)) - {""}  # "": bad lines
    assert len(edge_ids) > 35 and edge_ids & generated == set()


def test_a_generated_serial_equal_to_an_edge_case_serial_is_refused(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    generate_landing(plain, customers=20, seed=3)
    serial = json.loads((plain / "step_trainer/step_trainer-000.json").read_text().split("\n")[0])
    clash = build_edge_cases(3)
    clash.files["step_trainer"]["clash.json"] = [json.dumps(serial)]
    monkeypatch.setattr(generate, "build_edge_cases", lambda seed: clash)
    with pytest.raises(ValueError, match="serialNumber is one of the edge cases'"):
        generate_landing(tmp_path / "clash", customers=20, seed=3, edge_cases=True)
    assert not (tmp_path / "clash").exists()  # refused before anything was written


def test_the_sample_is_what_the_makefile_generates(tmp_path):
    """data/sample/ is exactly the output of `make sample`'s command: same files, same bytes."""
    recipe = (ROOT / "Makefile").read_text().split("\nsample:")[1].split("\n")[1]
    args = shlex.split(recipe.split("-m devdata", 1)[1])
    assert args[args.index("--out") + 1] == "data/sample"
    args[args.index("--out") + 1] = str(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    def files(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.json")}

    made, committed = files(tmp_path), files(SAMPLE)
    assert sorted(made) == sorted(committed)
    assert [name for name in made if made[name] != committed[name]] == []
