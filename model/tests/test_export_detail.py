"""The detail path as one graph of the runner's contract: the floor, the transformer's tokens per sub-tile,
the detail decoder over the whole tile; exported and verified like an H-VAR model."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from hvar import export as ex
from hvar.config import FLOOR_PRESETS, SCALES, get_config
from hvar.detail import Detail, save_detail
from hvar.detail_sr import DetailSR, SubTiles
from hvar.floor import Floor
from hvar.sr import HVAR, save_hvar
from hvar.tokenizer import HIT


def tiny_path(condition: str = "x4", seed: int = 0) -> tuple[Detail, HVAR]:
    """A tiny floor, tokenizer and detail decoder, and a hinted transformer on the floor's x4 drawing
    that tokenizer's tokens, every weight spread so that tokens and images vary."""
    torch.manual_seed(seed)
    cfg = get_config("tiny", lr_guided_decoder=True)
    tokenizer = HIT(cfg.tokenizer).eval()
    torch.nn.init.normal_(tokenizer.quantizer.embedding.weight, std=0.5)
    detail = Detail(Floor(FLOOR_PRESETS["tiny"]).eval(), tokenizer)
    with torch.no_grad():
        for p in detail.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    on_floor = dataclasses.replace(cfg.transformer, condition=condition, hint=True)
    cfg = dataclasses.replace(cfg, transformer=on_floor)
    transformer = HVAR(cfg, tokenizer).eval()
    with torch.no_grad():
        for p in transformer.transformer.parameters():
            p.normal_(0, 0.3)
    return detail.eval(), transformer


@pytest.fixture(scope="module")
def path():
    return tiny_path()


def lr_tiles(n: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def test_sub_tiles_are_cut_row_after_row_and_put_back_in_place():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    grid = SubTiles(tile=4, side=2, stride=2)
    cut = grid.cut(x, scale=2)
    assert cut.shape == (8, 3, 4, 4)
    assert torch.equal(cut[1], x[0, :, :4, 4:]) and torch.equal(cut[6], x[1, :, 4:, :4])
    assert torch.equal(grid.paste(cut, scale=2), x)


def test_overlapping_sub_tiles_are_cut_stride_apart_and_blend_back_to_the_image():
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    grid = SubTiles(tile=10, side=4, stride=3)  # 3 x 3 sub-tiles of 4 px, sharing 1 px with a neighbour
    cut = grid.cut(x, scale=4)
    assert grid.g == 3 and cut.shape == (18, 3, 16, 16)
    assert torch.equal(cut[4], x[0, :, 12:28, 12:28])
    torch.testing.assert_close(grid.paste(cut, scale=4), x)


def test_where_sub_tiles_overlap_each_fades_into_its_neighbour():
    grid = SubTiles(tile=12, side=8, stride=4)  # 2 x 2 sub-tiles sharing 4 px
    flat = torch.stack([torch.full((1, 8, 8), float(v)) for v in (0, 1, 0, 1)])  # left 0, right 1
    row = grid.paste(flat, scale=1)[0, 0, 0]
    assert torch.equal(row[:4], torch.zeros(4)) and torch.equal(row[8:], torch.ones(4))  # one sub-tile only
    shared = row[4:8]
    assert (shared > 0).all() and (shared < 1).all() and (shared.diff() > 0).all()


def test_over_one_tokenizer_tile_it_decodes_the_transformers_tokens_as_the_detail_stage_does(path):
    detail, transformer = path
    model = DetailSR(detail, transformer, detail.cfg.tile)
    lr, noise = lr_tiles(2, model.tile), torch.rand(2, model.tokens)
    with torch.no_grad():
        *images, tokens = model(lr, noise, torch.tensor([1.0]))
        guides = detail.floor_outputs(lr)
        idx, _ = transformer.draw(guides[2], noise, torch.tensor([1.0]))
        want = detail.decode(idx, guides)
    assert torch.equal(tokens, torch.cat(idx, dim=1))
    for got, w in zip(images, want, strict=True):
        torch.testing.assert_close(got, (w.clamp(-1, 1) + 1) / 2)


def test_each_sub_tile_draws_the_tokens_of_its_own_part_of_the_floors_x4(path):
    detail, transformer = path
    model = DetailSR(detail, transformer, 2 * detail.cfg.tile)
    L = transformer.tokens
    assert model.tokens == 4 * L
    lr, noise = lr_tiles(1, model.tile, seed=1), torch.rand(1, model.tokens)
    with torch.no_grad():
        *_, tokens = model(lr, noise, torch.tensor([1.0]))
        x4 = detail.floor_outputs(lr)[2]
        side = x4.shape[-1] // 2
        bottom_left = x4[..., side:, :side]
        idx, _ = transformer.draw(bottom_left, noise[:, 2 * L : 3 * L], torch.tensor([1.0]))
    assert torch.equal(tokens[:, 2 * L : 3 * L], torch.cat(idx, dim=1))


def test_each_sub_tile_is_decoded_alone_as_the_decoder_was_trained(path):
    # its norms and attention pool over the map they see: the neighbours' latents must not reach a sub-tile
    detail, transformer = path
    whole, one = (
        DetailSR(detail, transformer, 2 * detail.cfg.tile),
        DetailSR(detail, transformer, detail.cfg.tile),
    )
    lr = lr_tiles(1, whole.tile, seed=3)
    with torch.no_grad():
        guides = whole.guides(lr)
        _, fhats = transformer.draw(whole.sub_tiles(guides[2]), torch.rand(4, transformer.tokens), 1.0)
        images = whole.render(guides, fhats)
        cut = [whole.grid.cut(x, s)[:1] for s, x in zip(SCALES, guides, strict=True)]
        top_left = one.render(cut, [f[:1] for f in fhats])
    for im, alone in zip(images, top_left, strict=True):
        side = alone.shape[-1]
        torch.testing.assert_close(im[..., :side, :side], alone)


def test_outputs_not_decoded_from_the_tokens_are_the_floors(path):
    detail, transformer = path
    every, x4_only = (DetailSR(detail, transformer, 2 * detail.cfg.tile, decode) for decode in (None, (4,)))
    lr, noise = lr_tiles(1, every.tile, seed=4), torch.rand(1, every.tokens)
    with torch.no_grad():
        want, got = every(lr, noise, torch.tensor([1.0])), x4_only(lr, noise, torch.tensor([1.0]))
        floor = [(g + 1) / 2 for g in detail.floor_outputs(lr)]
    assert torch.equal(got[0], floor[0]) and torch.equal(got[1], floor[1])
    assert torch.equal(got[2], want[2]) and torch.equal(got[3], want[3])  # the same tokens, the same x4


def test_it_refuses_to_decode_an_output_the_tokens_do_not_reach(path):
    detail, transformer = path
    with pytest.raises(ValueError, match="decode"):
        DetailSR(detail, transformer, detail.cfg.tile, decode=())


def test_the_images_given_the_tokens_drawn_are_the_images_drawn(path):
    detail, transformer = path
    model = DetailSR(detail, transformer, 2 * detail.cfg.tile)
    lr = lr_tiles(2, model.tile, seed=2)
    with torch.no_grad():
        *images, tokens = model(lr, torch.rand(2, model.tokens), torch.tensor([1.0]))
        again = model.decode_tokens(lr, tokens)
    for a, b in zip(images, again, strict=True):
        assert torch.equal(a, b)


def test_it_refuses_a_transformer_on_the_floors_x1_and_a_tile_that_does_not_hold_whole_sub_tiles():
    detail, on_x1 = tiny_path(condition="x1")
    with pytest.raises(ValueError, match="x4"):
        DetailSR(detail, on_x1, detail.cfg.tile)
    _, on_x4 = tiny_path()
    with pytest.raises(ValueError, match="cover"):
        DetailSR(detail, on_x4, detail.cfg.tile + 4)
    with pytest.raises(ValueError, match="cover"):
        DetailSR(detail, on_x4, 2 * detail.cfg.tile, stride=detail.cfg.tile // 2 + 1)


def test_overlapping_sub_tiles_each_draw_the_tokens_of_their_own_part_of_the_floors_x4(path):
    detail, transformer = path
    t = detail.cfg.tile
    model = DetailSR(detail, transformer, 2 * t, stride=t // 2)  # 3 x 3 sub-tiles
    L = transformer.tokens
    assert model.tokens == 9 * L
    lr, noise = lr_tiles(1, model.tile, seed=5), torch.rand(1, model.tokens)
    with torch.no_grad():
        *_, tokens = model(lr, noise, torch.tensor([1.0]))
        x4 = detail.floor_outputs(lr)[2]
        centre = x4[..., 2 * t : 6 * t, 2 * t : 6 * t]  # the middle sub-tile: t/2 LR px in, t wide
        idx, _ = transformer.draw(centre, noise[:, 4 * L : 5 * L], torch.tensor([1.0]))
    assert torch.equal(tokens[:, 4 * L : 5 * L], torch.cat(idx, dim=1))


def saved_runs(tmp_path, path) -> list[str]:
    """The tiny detail run and its transformer saved as run folders: export's --run and --transformer."""
    detail, transformer = path
    save_detail(detail, tmp_path / "detail")
    save_hvar(transformer, tmp_path / "transformer")
    return ["--run", str(tmp_path / "detail"), "--transformer", str(tmp_path / "transformer")]


def test_the_export_cli_writes_a_verified_model_folder_the_runner_accepts(tmp_path, path, photo_root):
    # photo_root: the parity tiles are cut from Set5's photos, here small synthetic ones
    detail, transformer = path
    out, tile = tmp_path / "models" / "hvar-detail", 2 * detail.cfg.tile
    ex.main([*saved_runs(tmp_path, path), "--tile", str(tile), "--out", str(out), "--version", "0.1.0",
             "--no-acceptance"])  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tile"] == tile and manifest["tokens"] == 4 * transformer.tokens
    assert manifest["sha256"] == ex.sha256(out / "model.onnx") and manifest["scales"] == [1, 2, 4]
    assert all(row["unexplained_flips"] == 0 for row in manifest["verification"])
    parity = ex.load_parity(out / "parity.safetensors")
    feeds = {"lr": parity["lr"], "noise": parity["noise"], "temperature": np.zeros(1, np.float32)}
    x1, _, x4, tokens = ex.ort_session(out / "model.onnx").run(None, feeds)
    assert x4.shape[-1] == 4 * tile and np.array_equal(tokens, parity["greedy.tokens"])
    assert ex.psnr01(x1, parity["greedy.x1"]) > 50 and ex.psnr01(x4, parity["greedy.x4"]) > 50


def test_an_export_with_overlapping_sub_tiles_is_verified_and_says_their_stride(tmp_path, path, photo_root):
    detail, transformer = path
    out, t = tmp_path / "hvar-detail", detail.cfg.tile
    ex.main([*saved_runs(tmp_path, path), "--tile", str(2 * t), "--stride", str(t // 2), "--out", str(out),
             "--no-acceptance"])  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokens"] == 9 * transformer.tokens
    assert manifest["config"]["subTiles"] == 9 and manifest["config"]["subTileStride"] == t // 2
    assert all(row["unexplained_flips"] == 0 for row in manifest["verification"])


def test_a_detail_run_exports_only_with_its_transformer(tmp_path, path, capsys):
    detail, _ = path
    save_detail(detail, tmp_path / "detail")
    with pytest.raises(SystemExit):
        ex.main(["--run", str(tmp_path / "detail"), "--out", str(tmp_path / "out"), "--no-acceptance"])
    assert "needs --transformer" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_tile_of_no_whole_sub_tiles_is_refused_with_the_reason_and_writes_nothing(tmp_path, path):
    detail, _ = path
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="do not cover the tile side"):
        ex.main([*saved_runs(tmp_path, path), "--tile", str(detail.cfg.tile + 4), "--out", str(out),
                 "--no-acceptance"])  # fmt: skip
    assert not out.exists()


def test_an_export_can_draw_from_fewer_tokens_than_the_transformer_was_trained_to(tmp_path, path, photo_root):
    _, transformer = path
    out = tmp_path / "models" / "hvar-detail"
    ex.main([*saved_runs(tmp_path, path), "--top-k", "1", "--decode", "4", "--out", str(out),
             "--no-acceptance"])  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["transformer"]["top_k"] == 1 and transformer.cfg.transformer.top_k == 0
    assert manifest["config"]["decode"] == [4]
    parity = ex.load_parity(out / "parity.safetensors")
    assert np.array_equal(parity["sampled.tokens"], parity["greedy.tokens"])  # one token left to draw


def test_an_overlap_over_half_the_tile_is_refused_before_any_work(tmp_path, path):
    detail, _ = path
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="half the tile"):
        ex.main([*saved_runs(tmp_path, path), "--overlap", str(detail.cfg.tile), "--out", str(out),
                 "--no-acceptance"])  # fmt: skip
    assert not out.exists()
