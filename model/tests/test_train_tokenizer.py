import json

import pytest
import torch

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


def test_init_with_a_frozen_encoder_keeps_every_token_and_trains_the_decoder(photo_root, tmp_path):
    from hvar.tokenizer import load_hit

    first, second = tmp_path / "first", tmp_path / "second"
    main(["--preset", "tiny", "--out", str(first), "--steps", "2", "--lr-guided", "--no-eval",
          "--threads", "1", "--batch-size", "2"])  # fmt: skip
    main(["--init", str(first), "--out", str(second), "--freeze-encoder", "--guide", "mixed", "--steps", "2",
          "--no-eval", "--threads", "1", "--batch-size", "2"])  # fmt: skip
    a, _ = load_hit(first)
    b, _ = load_hit(second)
    assert a.same_tokens_as(b)
    assert not torch.equal(a.decoder.conv_out.weight, b.decoder.conv_out.weight)
    state = json.loads((second / "state.json").read_text())
    assert state["guide"] == "mixed" and state["freeze_encoder"] and state["init"] == str(first)


def test_freezing_the_encoder_of_a_new_random_tokenizer_is_refused(photo_root, tmp_path):
    with pytest.raises(SystemExit):
        main(["--preset", "tiny", "--out", str(tmp_path / "run"), "--steps", "1", "--freeze-encoder"])


def test_guide_dropout_blanks_whole_guides_at_the_requested_rate():
    from hvar.train_tokenizer import drop_guides

    lr = torch.rand(4000, 3, 2, 2) + 0.5
    out = drop_guides(lr, 0.25, torch.Generator().manual_seed(0))
    blank = (out == 0).flatten(1).all(1)
    assert abs(blank.float().mean() - 0.25) < 0.03
    assert torch.equal(out[~blank], lr[~blank])


def test_init_with_plain_starts_the_plain_quantizer_from_the_hit_weights(photo_root, tmp_path):
    from hvar.tokenizer import load_hit
    from hvar.train_tokenizer import switch_quantizer

    hit_run, plain_run = tmp_path / "hit", tmp_path / "plain"
    main(["--preset", "tiny", "--out", str(hit_run), "--steps", "1", "--lr-guided", "--no-eval",
          "--threads", "1", "--batch-size", "2"])  # fmt: skip
    hit, cfg = load_hit(hit_run)
    plain, plain_cfg = switch_quantizer(hit, cfg, hierarchical=False)
    assert plain_cfg.tokenizer.hierarchical is False and cfg.tokenizer.hierarchical is True
    weights = zip(hit.state_dict().values(), plain.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in weights)

    main(["--init", str(hit_run), "--plain", "--out", str(plain_run), "--steps", "1", "--no-eval",
          "--threads", "1", "--batch-size", "2"])  # fmt: skip
    assert json.loads((plain_run / "config.json").read_text())["tokenizer"]["hierarchical"] is False


def test_a_frozen_encoder_refuses_a_quantizer_switch(tmp_path, capsys):
    (tmp_path / "model.safetensors").touch()
    with pytest.raises(SystemExit):
        main(["--init", str(tmp_path), "--plain", "--freeze-encoder", "--out", str(tmp_path / "x"),
              "--steps", "1"])  # fmt: skip
    assert "would change them" in capsys.readouterr().err
