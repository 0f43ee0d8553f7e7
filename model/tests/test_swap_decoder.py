"""A retrained decoder goes under a trained transformer only when every token stays the same."""

import copy
import json

import pytest
import torch
from tiny_models import images, random_hvar

from hvar.sr import load_hvar, save_hvar
from hvar.swap_decoder import main
from hvar.tokenizer import save_hit


@pytest.fixture
def run(tmp_path):
    model = random_hvar(seed=5, tokenizer={"lr_guided_decoder": True})
    save_hvar(model, tmp_path / "run")
    return model, tmp_path / "run"


def retrained(model, tmp_path, part: str):
    """A copy of the model's tokenizer with one part's weights changed, saved as a tokenizer run."""
    tokenizer = copy.deepcopy(model.tokenizer)
    weight = tokenizer.decoder.conv_out.weight if part == "decoder" else tokenizer.quantizer.embedding.weight
    with torch.no_grad():
        weight.add_(0.1)
    save_hit(tokenizer, model.cfg, tmp_path / part)
    return tokenizer, tmp_path / part


def test_keeps_the_transformer_and_its_tokens_and_decodes_them_with_the_new_decoder(run, tmp_path):
    model, folder = run
    tokenizer, tok_folder = retrained(model, tmp_path, "decoder")
    main(["--run", str(folder), "--tokenizer", str(tok_folder), "--out", str(tmp_path / "new")])

    new = load_hvar(tmp_path / "new")
    lr = (images(model.cfg, batch=2, side=model.cfg.tokenizer.tile) + 1) / 2
    with torch.no_grad():
        old_tokens, old_imgs = model.generate(lr * 2 - 1)
        new_tokens, new_imgs = new.generate(lr * 2 - 1)
        expected = tokenizer.fhat_to_img(tokenizer.idx_to_fhats(old_tokens)[-1], lr * 2 - 1)
    assert all(torch.equal(a, b) for a, b in zip(old_tokens, new_tokens, strict=True))
    assert not torch.allclose(old_imgs[-1], new_imgs[-1])
    assert torch.allclose(new_imgs[-1], expected, atol=1e-6)
    provenance = json.loads((tmp_path / "new" / "decoder.json").read_text())
    assert provenance == {"transformer": str(folder), "tokenizer": str(tok_folder)}


def test_refuses_a_tokenizer_whose_codebook_gives_other_tokens(run, tmp_path):
    model, folder = run
    _, tok_folder = retrained(model, tmp_path, "codebook")
    with pytest.raises(SystemExit, match="encoder or codebook differs"):
        main(["--run", str(folder), "--tokenizer", str(tok_folder), "--out", str(tmp_path / "new")])
    assert not (tmp_path / "new").exists()


def test_refuses_to_overwrite_a_run(run, tmp_path):
    model, folder = run
    _, tok_folder = retrained(model, tmp_path, "decoder")
    with pytest.raises(SystemExit):
        main(["--run", str(folder), "--tokenizer", str(tok_folder), "--out", str(folder)])
