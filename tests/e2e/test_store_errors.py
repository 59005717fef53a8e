"""Every error path of a results folder, with its message: nothing damaged is read as if whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxreg.errors import InputError
from jaxreg.report import store
from jaxreg.train import METRICS

RECORD = {"config_id": "abc", "seed": 0, "round": 0, "case": None, "point": {}, "hparams": {"l2": 0.0},
          "status": "ok", "best_epoch": 0, "stopped_epoch": 0, "diverged_epoch": 0,
          "metrics": dict.fromkeys(METRICS, 0.5)}


def write_journal(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / store.JOURNAL
    path.write_text("".join(lines))
    return path


def test_a_corrupt_line_in_the_middle_of_the_journal_is_refused_not_skipped(tmp_path):
    good = json.dumps(RECORD) + "\n"
    path = write_journal(tmp_path, [good, '{"config_id": "abc", "se\n', good.replace('"seed": 0', '"seed": 1')])
    before = path.read_bytes()
    with pytest.raises(InputError) as error:
        store.read_journal(tmp_path, repair=True)
    assert str(error.value) == (f"{path}: line 2: expected a JSON trial record, got "
                                "b'{\"config_id\": \"abc\", \"se'")
    assert path.read_bytes() == before  # nothing repaired, nothing lost


def test_a_torn_last_line_is_cut_off_only_when_repairing(tmp_path):
    good = json.dumps(RECORD) + "\n"
    path = write_journal(tmp_path, [good, '{"config_id": "abc", "se'])
    assert store.read_journal(tmp_path) == [RECORD]
    assert path.read_text() == good + '{"config_id": "abc", "se'
    assert store.read_journal(tmp_path, repair=True) == [RECORD]
    assert path.read_text() == good


def test_a_missing_or_broken_manifest_is_named(tmp_path):
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value) == f"DIR: expected a jaxreg results folder with manifest.json, got {str(tmp_path)!r}"
    (tmp_path / store.MANIFEST).write_text("{not json")
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value) == f"DIR: expected valid JSON in {tmp_path / store.MANIFEST}, got a broken file"


def test_a_damaged_curves_file_is_named_and_a_missing_one_is_not_found(tmp_path):
    (tmp_path / store.CURVES).mkdir()
    path = tmp_path / store.CURVES / "abc_0.npz"
    path.write_bytes(b"PK\x03\x04 this is not a whole zip file")
    with pytest.raises(InputError) as error:
        store.load_curves(tmp_path, "abc", 0)
    assert str(error.value) == (f"{path}: expected a curves file written by jaxreg, got a damaged file "
                                "(BadZipFile); rerun the same jaxreg run to train its trial again")
    with pytest.raises(FileNotFoundError):
        store.load_curves(tmp_path, "abc", 1)


def test_show_on_a_folder_with_a_corrupt_middle_line_exits_2_with_one_line(tmp_path):
    root = Path(__file__).resolve().parents[2]
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\n[data]\ndataset = "blobs"\n[model]\nhidden = [4]\n'
                    '[train]\nloss = "bce"\nepochs = 1\n[output]\nplots = false\n')
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "jaxreg", "run", str(spec), "--out", str(out), "--quiet"],
                         cwd=root, capture_output=True, text=True, env={**os.environ, "JAXREG_CACHE_DIR": "off"})
    assert run.returncode == 0, run.stderr
    journal = out / store.JOURNAL
    line = journal.read_text()
    journal.write_text(line + "garbage\n" + line)
    shown = subprocess.run([sys.executable, "-m", "jaxreg", "show", str(out)], cwd=root,
                           capture_output=True, text=True)
    assert shown.returncode == 2 and shown.stdout == ""
    assert shown.stderr == f"jaxreg: error: {journal}: line 2: expected a JSON trial record, got b'garbage'\n"


@pytest.mark.parametrize("line", ["{}", "null", "[1, 2]", '{"config_id": "abc", "seed": 0}',
                                  '{"config_id": "abc", "seed": "0", "metrics": {}, "hparams": {}}'])
def test_a_json_line_that_is_not_a_trial_record_is_refused(tmp_path, line):
    good = json.dumps(RECORD) + "\n"
    path = write_journal(tmp_path, [good, line + "\n", good])
    with pytest.raises(InputError) as error:
        store.read_journal(tmp_path)
    assert str(error.value) == f"{path}: line 2: expected a JSON trial record, got {line.encode()[:60]!r}"


@pytest.mark.parametrize("manifest", ["{}", "[]", '{"spec": {}, "spec_sha256": "x"}'])
def test_a_manifest_without_its_fields_is_refused(tmp_path, manifest):
    (tmp_path / store.MANIFEST).write_text(manifest)
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value) == (f"DIR: expected a manifest with spec, spec_sha256 and runs in "
                                f"{tmp_path / store.MANIFEST}, got {str(json.loads(manifest))[:60]!r}")
