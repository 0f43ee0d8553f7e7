import json

from hvar.train_tokenizer import main


def test_training_writes_a_resumable_run_and_a_report(photo_root, tmp_path):
    out = tmp_path / "run"
    main(["--preset", "tiny", "--out", str(out), "--steps", "5", "--threads", "1", "--batch-size", "2"])
    for f in ("model.safetensors", "config.json", "optim.pt", "state.json", "metrics.jsonl", "curves.png"):
        assert (out / f).exists(), f
    report = json.loads((out / "report.json").read_text())
    assert report["step"] == 5 and set(report["eval"]["psnr_y"]["Set5"]) == {"x1", "x2", "x4"}
    assert (out / "report.md").read_text().startswith("# Tokenizer run")

    main(["--out", str(out), "--resume", "--steps", "7", "--threads", "1", "--no-eval"])
    assert json.loads((out / "state.json").read_text())["step"] == 7


def test_lr_guided_plain_options_reach_the_saved_config(photo_root, tmp_path):
    out = tmp_path / "run"
    main(["--preset", "tiny", "--out", str(out), "--steps", "1", "--plain", "--lr-guided", "--no-eval",
          "--threads", "1", "--batch-size", "2"])  # fmt: skip
    tok = json.loads((out / "config.json").read_text())["tokenizer"]
    assert tok["hierarchical"] is False and tok["lr_guided_decoder"] is True
