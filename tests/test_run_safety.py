"""Regression tests of issue 18: commands that must not destroy earlier outputs or fail with a traceback."""
from __future__ import annotations

import io
import os

import pytest

from global_model.cli import main

SYNTH = ["synth", "--ids", "4", "--cameras", "3", "--real-ids", "0", "--size", "48", "64", "--workers", "1"]


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


def test_synth_refuses_a_folder_that_is_not_its_output(tmp_path, capsys):
    (tmp_path / "image_train").mkdir()
    (tmp_path / "image_train" / "mine.jpg").write_bytes(b"x")
    (tmp_path / "name_train.txt").write_text("mine.jpg\n")
    assert main([*SYNTH, "--out", str(tmp_path)]) == 2
    assert str(tmp_path) in _one_error_line(capsys.readouterr().err)
    assert (tmp_path / "image_train" / "mine.jpg").exists()
    assert (tmp_path / "name_train.txt").read_text() == "mine.jpg\n"


def test_synth_replaces_its_own_output_and_a_forced_folder(tmp_path, capsys):
    out = tmp_path / "data"
    assert main([*SYNTH, "--out", str(out)]) == 0  # absent folder
    assert main([*SYNTH, "--out", str(out), "--seed", "1"]) == 0  # its own output, no --force
    (out / ".reid-synth").unlink()
    (out / "summary.json").unlink()
    assert main([*SYNTH, "--out", str(out)]) == 2
    assert main([*SYNTH, "--out", str(out), "--force"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*SYNTH, "--out", str(empty)]) == 0


def test_synth_out_that_cannot_be_created_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "data"
    assert main([*SYNTH, "--out", str(out)]) == 1
    assert str(out) in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("key, value", [("SOLVER.MAX_EPOCHS", "0"), ("SOLVER.MAX_EPOCHS", "-1"),
                                        ("SOLVER.IMS_PER_BATCH", "0"), ("SOLVER.IMS_PER_BATCH", "30"),
                                        ("DATALOADER.NUM_INSTANCE", "0")])
def test_bad_training_numbers_are_usage_errors_naming_the_key(key, value, tiny_config, tiny_opts, tiny_data,
                                                             tmp_path, capsys):
    code = main(["train", "--config", tiny_config, "--no-progress", *tiny_opts, "DATASETS.ROOT", tiny_data,
                 "OUTPUT_DIR", str(tmp_path), key, value])
    assert code == 2
    assert key in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "config.yml").exists() and not (tmp_path / "model_final.pth").exists()


def test_a_finished_run_is_not_replaced(tiny_config, tiny_opts, tiny_data, tmp_path, capsys):
    final, config = tmp_path / "model_final.pth", tmp_path / "config.yml"
    final.write_bytes(b"trained")
    config.write_text("finished run\n")
    base = ["train", "--config", tiny_config, "--no-progress", *tiny_opts, "DATASETS.ROOT", tiny_data,
            "OUTPUT_DIR", str(tmp_path)]
    assert main(base) == 2
    assert "OUTPUT_DIR" in _one_error_line(capsys.readouterr().err)
    assert main([*base, "MODEL.MGN.BRANCHES", "x"]) == 2  # a bad override replaces nothing either
    assert final.read_bytes() == b"trained" and config.read_text() == "finished run\n"


def test_a_failing_build_writes_no_config(tiny_config, tiny_opts, tiny_data, tmp_path, capsys):
    code = main(["train", "--config", tiny_config, "--no-progress", *tiny_opts, "DATASETS.ROOT", tiny_data,
                 "OUTPUT_DIR", str(tmp_path), "DATASETS.TRAIN", "['nonexistent']"])
    assert code in (1, 2)
    _one_error_line(capsys.readouterr().err)
    assert not os.path.exists(tmp_path / "config.yml")


def test_cosine_schedule_ends_exactly_at_the_last_iteration_when_epoch_lengths_vary(tiny_cfg, tiny_data, tmp_path):
    from global_model.engine.trainer import build_trainer

    cfg = tiny_cfg(tiny_data, str(tmp_path), "SOLVER.ITERS_PER_EPOCH", "0", "SOLVER.MAX_EPOCHS", "4",
                   "SOLVER.IMS_PER_BATCH", "24",
                   "SOLVER.SCHED", "cosine", "SOLVER.WARMUP_EPOCHS", "1", "SOLVER.ETA_MIN_LR", "0.0001")
    trainer = build_trainer(cfg, progress=False)
    counts = []
    for epoch in range(1, 5):
        trainer.sampler.set_epoch(epoch)
        counts.append(len(trainer.train_loader))
    assert len(set(counts)) > 1, counts  # the premise: this set's epochs differ in length
    lrs = []
    for _ in range(sum(counts)):
        lrs.append(trainer.scheduler.get_lr())
        trainer.scheduler.step()
    assert min(lrs) > cfg.SOLVER.ETA_MIN_LR  # every iteration trains above the floor ...
    assert trainer.scheduler.get_lr() == pytest.approx(cfg.SOLVER.ETA_MIN_LR)  # ... reached after the last one


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_are_drawn_only_on_a_terminal_and_when_not_turned_off():
    from post_processing.progress import set_progress, show_progress

    assert not show_progress(True, io.StringIO())
    assert show_progress(True, _Terminal()) and show_progress(None, _Terminal())
    assert not show_progress(False, _Terminal())
    try:
        set_progress(False)
        assert not show_progress(True, _Terminal())
    finally:
        set_progress(True)


def test_training_and_extraction_write_no_bar_into_a_log(tiny_cfg, tiny_data, tmp_path, capfd):
    from global_model.engine.extractor import extract_features
    from global_model.engine.trainer import build_trainer

    cfg = tiny_cfg(tiny_data, str(tmp_path), "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.LOG_PERIOD", "1")
    trainer = build_trainer(cfg, progress=True)
    capfd.readouterr()
    trainer.train_epoch(1)
    extract_features(trainer.model, trainer.train_records[:8], cfg, progress=True)
    captured = capfd.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out


def test_ensemble_no_progress_turns_bars_off():
    from click.testing import CliRunner

    from ensembles.cli import main as ensemble
    from post_processing.progress import set_progress, show_progress

    try:
        result = CliRunner().invoke(ensemble, ["--no-progress", "steps"])
        assert result.exit_code == 0, result.output
        assert not show_progress(True, _Terminal())
    finally:
        set_progress(True)



def test_synth_into_a_folder_it_cannot_write_is_one_error_line(tmp_path, capsys, monkeypatch):
    from global_model.data.synth import writer

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(writer, "_make_folders", lambda stage, real: refuse(stage))
    out = tmp_path / "ro"
    out.mkdir()
    assert main([*SYNTH, "--out", str(out)]) == 1
    assert str(out) in _one_error_line(capsys.readouterr().err)
