"""The singan-tf command line: end to end, and every user error as one clear line."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import singan_tf
from singan_tf.cli import main

from conftest import write_image

TINY_ARGS = ["--max-size", "40", "--min-size", "24", "--iters", "20", "--single-process",
             "--no-tensorboard", "--set", "critic_steps=1", "--set", "generator_steps=1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, message, code=1):
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def settings_line(info_output: str) -> str:
    return next(line for line in info_output.splitlines() if line.startswith("settings:"))


def test_fit_sample_info_end_to_end(tmp_path, monkeypatch):
    image = write_image(tmp_path / "in.png", 60, 72, mode="RGBA")  # like colusseum.png
    model = tmp_path / "model"
    result = run("fit", image, "-o", model, *TINY_ARGS, "--seed", 3, "--set", "max_channels=16",
                 "--set", "base_channels=16")
    assert result.exit_code == 0, result.output
    assert "dropped the alpha channel" in result.output
    assert "shrunk to 34x40" in result.output
    assert "done: 3 scales" in result.output

    info = run("info", model)
    assert info.exit_code == 0 and "(complete)" in info.output and "34x40" in info.output
    settings = settings_line(info.output)
    assert "max_channels=16" in settings and "critic_steps=1" in settings
    assert "crop_size" not in settings  # as the preset has it
    with monkeypatch.context() as later:  # the preset changes after the fit
        later.setitem(singan_tf.PRESETS, "fast", singan_tf.FAST.replace(crop_size=48))
        assert "crop_size" not in settings_line(run("info", model).output)
        saved = json.loads((model / "singan.json").read_text())
        del saved["settings"]  # as a model fitted before the manifest recorded them: told
        (model / "singan.json").write_text(json.dumps(saved))  # against today's preset
        assert "crop_size=64" in settings_line(run("info", model).output)
        del saved["config"]["crop_size"]  # ... unless fitted before the option existed
        (model / "singan.json").write_text(json.dumps(saved))
        settings = settings_line(run("info", model).output)
        assert "crop_size" not in settings and "max_channels=16" in settings
    scales = json.loads(run("info", model, "--json").output)["scales"]
    for scale in scales:  # each scale's reconstruction error, as measured after training
        assert f"{scale['rec_psnr_db']:.1f} dB (MSE {scale['rec_error']:.4f}" in info.output
    manifest = json.loads(run("info", model, "--json").output)
    assert manifest["num_scales"] == 3 and manifest["config"]["max_channels"] == 16
    assert [scale["channels"] for scale in manifest["scales"]] == [16, 16, 16]

    out = tmp_path / "samples"
    result = run("sample", model, "-o", out, "-n", 3, "--seed", 7, "--scale-w", 1.5)
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.png"))
    assert len(files) == 3
    assert Image.open(files[0]).size == (60, 34)
    again = run("sample", model, "-o", tmp_path / "again", "-n", 3, "--seed", 7, "--scale-w", 1.5)
    assert again.exit_code == 0
    for a, b in zip(files, sorted((tmp_path / "again").glob("*.png"))):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.png", "image not found"),
    (lambda d: d, "directory"),
    (lambda d: (d / "t.png").write_text("hello") and d / "t.png", "not an image"),
    (lambda d: write_image(d / "small.png", 16, 20), "smaller than min_size"),
])
def test_fit_rejects_bad_images_and_writes_nothing(tmp_path, make, message):
    image = make(tmp_path)
    model = tmp_path / "model"
    assert_user_error(run("fit", image, "-o", model, *TINY_ARGS), message)
    assert not model.exists()


@pytest.mark.parametrize("setting,message", [
    ("max_channels", "not OPTION=VALUE"), ("max_chanels=64", "unknown option(s) ['max_chanels']"),
    ("max_channels=0", "max_channels must be a positive integer"),
    ("max_channels=six", "max_channels must be a positive integer"),
    ("jit_compile=1", "jit_compile must be true or false"),
    ("generator_batchnorm=0", "generator_batchnorm must be true or false")])
def test_fit_refuses_bad_config_settings(tmp_path, setting, message):
    image = write_image(tmp_path / "in.png")
    assert_user_error(run("fit", image, "-o", tmp_path / "m", "--set", setting), message)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("option,value", [("--max-size", 0), ("--min-size", -3), ("--iters", 0),
                                          ("--preset", "slow"), ("--seed", -1)])
def test_fit_rejects_bad_options(tmp_path, option, value):
    image = write_image(tmp_path / "in.png")
    result = run("fit", image, "-o", tmp_path / "m", option, value)
    assert result.exit_code == 2 and option in result.output
    assert not (tmp_path / "m").exists()


def test_fit_refuses_a_non_empty_directory(tmp_path):
    image = write_image(tmp_path / "in.png")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    assert_user_error(run("fit", image, "-o", tmp_path / "m", *TINY_ARGS), "not empty")
    assert_user_error(run("fit", image, "-o", tmp_path / "m", *TINY_ARGS, "--overwrite"),
                      "not a singan-tf model")
    assert_user_error(run("fit", "-o", tmp_path / "m", "--resume", "--iters", 5), "saved settings")
    for option in (["--preset", "paper"], ["--seed", "3"], ["--task", "sr"]):
        assert_user_error(run("fit", "-o", tmp_path / "m", "--resume", *option),
                          "saved settings")
    assert (tmp_path / "m" / "keep.txt").exists()
    (tmp_path / "file").write_text("x")
    assert_user_error(run("fit", image, "-o", tmp_path / "file" / "m", *TINY_ARGS),
                      "Not a directory")  # the OS's refusal, in one line
    assert (tmp_path / "file").read_text() == "x"


def test_sample_errors(tmp_path, fitted_model_dir):
    assert_user_error(run("sample", tmp_path / "nope", "-o", tmp_path / "s"), "not found")
    assert_user_error(run("sample", fitted_model_dir, "-o", tmp_path / "s", "--start-scale", 3),
                      "start scale must be in 0..2")
    for value in ("0", "-1", "inf", "nan"):
        assert_user_error(run("sample", fitted_model_dir, "-o", tmp_path / "s", "--scale-h",
                              value), "is not a finite positive number", code=2)
    assert_user_error(run("sample", fitted_model_dir, "-o", tmp_path / "s", "--seed",
                          2 ** 64 + 1), "--seed", code=2)  # not wrapped to a small seed
    result = run("sample", fitted_model_dir, "-o", tmp_path / "s", "-n", 0)
    assert result.exit_code == 2 and "--num" in result.output
    (tmp_path / "file").write_text("x")
    assert_user_error(run("sample", fitted_model_dir, "-o", tmp_path / "file"), "not a directory")
    assert not (tmp_path / "s").exists()


def test_info_on_a_corrupt_model(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "singan.json").write_text("[1, 2")
    assert_user_error(run("info", tmp_path / "m"), "corrupt")


@pytest.mark.parametrize("index, field, value, shown", [
    (2, "colour_drift", 7.5, "moved the samples' colours by 7.5 levels"),
    (1, "layout_error", 6.4, "samples 6.4x further from the photo than"),
    (0, "rejected_layout_errors", [12.8, 6.1], "kept of 3 tries (the others drew another")])
def test_info_shows_a_scale_the_trainer_warned_about(model_copy, index, field, value, shown):
    manifest = json.loads((model_copy / "singan.json").read_text())
    manifest["scales"][index][field] = value
    (model_copy / "singan.json").write_text(json.dumps(manifest))
    lines = run("info", model_copy).output.splitlines()
    flagged = [line for line in lines if shown in line]
    assert len(flagged) == 1 and flagged[0].split()[0] == str(index)


def test_info_says_when_stages_0_and_1_were_trained_again(model_copy):
    manifest = json.loads((model_copy / "singan.json").read_text())
    manifest["relayout"] = {"stage_1_layout_error": 12.9, "stage_0_layout_error": 4.65,
                            "first_critic_layers": 9}
    (model_copy / "singan.json").write_text(json.dumps(manifest))
    assert ("stages 0 and 1 trained again with a 9-conv stage-0 critic: the first stage 1's "
            "samples lay 12.9x further") in run("info", model_copy).output


def test_info_reads_back_every_file_it_lists(model_copy):
    weights = model_copy / "scales" / "01" / "generator.keras"
    weights.write_bytes(weights.read_bytes()[:500])  # truncated
    result = run("info", model_copy)
    assert result.exit_code == 1 and "DAMAGED: 1 file problem(s)" in result.output
    assert "scale 1 in" in result.output and "is corrupt" in result.output
    assert "Traceback" not in result.output


def _cli(*args):
    exe = Path(sys.executable).with_name("singan-tf")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "singan_tf.cli"]
    return command + [str(a) for a in args]


@pytest.mark.slow
def test_killed_fit_keeps_finished_scales_and_resumes(tmp_path):
    """A real `singan-tf fit` (one process per scale) killed with SIGKILL mid-scale, then
    --resume: the killed parent takes its child along (and its lock: flock), and resuming
    finishes the model with the fit's own options."""
    image = write_image(tmp_path / "in.png", 40, 48)
    model = tmp_path / "model"
    args = ["fit", image, "-o", model, "--max-size", "40", "--min-size", "24", "--iters", "30",
            "--no-tensorboard", "--set", "critic_steps=1", "--set", "generator_steps=1"]
    process = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = model / "singan.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and process.poll() is None:
            if manifest.exists() and len(json.loads(manifest.read_text())["scales"]) >= 1:
                break
            time.sleep(0.1)
        assert process.poll() is None, "fit finished before it could be interrupted"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    done = len(json.loads(manifest.read_text())["scales"])
    assert done < 3
    assert sorted(p.name for p in (model / "scales").iterdir() if not p.name.startswith(".")) \
        == [f"{n:02d}" for n in range(done)]

    info = subprocess.run(_cli("info", model), capture_output=True, text=True)
    assert "INCOMPLETE" in info.stdout
    sample = subprocess.run(_cli("sample", model, "-o", tmp_path / "s"), capture_output=True,
                            text=True)
    assert sample.returncode == 1 and "--resume" in sample.stderr

    resumed = subprocess.run(_cli("fit", "-o", model, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at scale {done}" in resumed.stdout
    assert not [p for p in (model / "scales").iterdir() if p.name.startswith(".")]
    assert not (model / "logs").exists()  # the resume keeps the fit's --no-tensorboard
    sample = subprocess.run(_cli("sample", model, "-o", tmp_path / "s", "-n", 2),
                            capture_output=True, text=True)
    assert sample.returncode == 0, sample.stderr
    assert len(list((tmp_path / "s").glob("*.png"))) == 2


def test_a_failing_tensorflow_import_shows_what_it_printed():
    """singan_tf quiets TensorFlow's start-up chatter, but never the reason it fails."""
    script = (
        "import builtins, os\n"
        "real_import = builtins.__import__\n"
        "def fake(name, *args, **kwargs):\n"
        "    if name == 'tensorflow':\n"
        "        os.write(2, b'libtensorflow_framework.so.2: cannot open shared object\\n')\n"
        "        raise ImportError('broken install')\n"
        "    return real_import(name, *args, **kwargs)\n"
        "builtins.__import__ = fake\n"
        "import singan_tf\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert "libtensorflow_framework.so.2: cannot open shared object" in result.stderr
    assert "ImportError: broken install" in result.stderr
