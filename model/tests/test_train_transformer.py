import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from tiny_models import images, random_hvar

from hvar.dpo import loss_on_batch
from hvar.resize import area_half
from hvar.tokenizer import save_hit
from hvar.train_transformer import main


@pytest.fixture
def tok_run(tmp_path):
    """A tokenizer run folder (random tiny HIT with a spread codebook), as train_tokenizer leaves one."""
    model = random_hvar(spread=0)
    save_hit(model.tokenizer, model.cfg, tmp_path / "tok")
    return tmp_path / "tok"


def test_training_writes_a_resumable_run_and_an_sr_report(photo_root, tok_run, tmp_path):
    out = tmp_path / "run"
    main(["--preset", "tiny", "--tokenizer", str(tok_run), "--out", str(out), "--steps", "3",
          "--threads", "1", "--batch-size", "2", "--eval-sets", "Set14"])  # fmt: skip
    for f in ("model.safetensors", "config.json", "tokenizer/model.safetensors", "optim.pt", "state.json",
              "metrics.jsonl", "curves.png", "report.json", "report.md"):  # fmt: skip
        assert (out / f).exists(), f
    report = json.loads((out / "report.json").read_text())
    assert report["step"] == 3 and report["config"]["transformer"]["dpo_mode"] == "simple"
    rows = {(r["degradation"], r["scale"]) for r in report["eval"]["results"]}
    assert rows == {(d, s) for d in ("bicubic", "realistic") for s in (2, 4)}
    assert list((out / "crops").glob("*.png"))

    main(["--out", str(out), "--resume", "--steps", "5", "--threads", "1", "--no-eval"])
    assert json.loads((out / "state.json").read_text())["step"] == 5
    rec = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"ce", "ce_seg0", "ce_seg2", "dpo", "margin"} <= set(rec[-1])


def test_no_dpo_and_reference_dpo_runs_with_realistic_and_mixed_lr(photo_root, tok_run, tmp_path):
    common = ["--preset", "tiny", "--tokenizer", str(tok_run), "--steps", "1", "--threads", "1",
              "--batch-size", "2", "--no-eval"]  # fmt: skip
    main(common + ["--out", str(tmp_path / "off"), "--dpo", "off", "--lr-mode", "realistic"])
    rec = json.loads((tmp_path / "off" / "metrics.jsonl").read_text().splitlines()[-1])
    cfg = json.loads((tmp_path / "off" / "config.json").read_text())["transformer"]
    assert cfg["dpo_mode"] == "off" and "dpo" not in rec and "ce_seg1" in rec
    ref = ["--out", str(tmp_path / "ref"), "--dpo", "reference", "--dpo-beta", "0.5", "--lr-mode", "mixed"]
    main(common + ref)
    assert (tmp_path / "ref" / "reference.safetensors").exists()
    assert json.loads((tmp_path / "ref" / "config.json").read_text())["transformer"]["dpo_beta"] == 0.5


# ---- DDP: two CPU processes (gloo) give the update of one process on the same global batch -----------
WORKER = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from tiny_models import random_hvar
    from hvar.ddp import setup_distributed, wrap_ddp
    from hvar.dpo import loss_on_batch
    rank, world, device = setup_distributed()
    model = random_hvar(spread=0.1)
    hr, lr = torch.load({batch!r})
    ddp = wrap_ddp(model.transformer, device, world)
    opt = torch.optim.SGD(model.transformer.parameters(), lr=0.5)
    half = hr.shape[0] // world
    loss, _ = loss_on_batch(ddp, model, hr[rank * half:(rank + 1) * half], lr[rank * half:(rank + 1) * half])
    loss.backward()
    opt.step()
    if rank == 0:
        torch.save(model.transformer.state_dict(), {out!r})
    # Both ranks reach here before either tears gloo down: a rank that destroys the group while its
    # peer still talks to it can abort ("terminate called without an active exception").
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_give_the_same_update_as_one_process(tmp_path):
    hr = images(random_hvar().cfg, batch=4, seed=7)
    lr = area_half(area_half(hr))
    torch.save((hr, lr), tmp_path / "batch.pt")
    script = tmp_path / "worker.py"
    tests_dir = os.path.dirname(__file__)
    script.write_text(
        WORKER.format(tests=tests_dir, batch=str(tmp_path / "batch.pt"), out=str(tmp_path / "ddp.pt"))
    )
    port = free_port()
    procs = []
    for rank in range(2):
        env = os.environ | dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_PORT=str(port),
                                MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")  # fmt: skip
        procs.append(
            subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
        )
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs

    model = random_hvar(spread=0.1)
    before = {k: v.clone() for k, v in model.transformer.state_dict().items()}
    opt = torch.optim.SGD(model.transformer.parameters(), lr=0.5)
    loss, _ = loss_on_batch(model.transformer, model, hr, lr)
    loss.backward()
    opt.step()
    ddp = torch.load(tmp_path / "ddp.pt")
    moved = 0
    for k, v in model.transformer.state_dict().items():
        torch.testing.assert_close(ddp[k], v, rtol=0, atol=2e-6, msg=k)
        moved += int(not torch.equal(v, before[k]))
    assert moved > 10  # the step did update the weights


def test_loss_on_batch_runs_hr_and_lr_sequences_in_one_forward():
    model = random_hvar(spread=0.1)
    hr = images(model.cfg, batch=2)
    calls = []
    model.transformer.register_forward_hook(lambda m, a, o: calls.append(o.shape[0]))
    loss_on_batch(model.transformer, model, hr, area_half(area_half(hr)))
    assert calls == [4]


def test_init_starts_from_another_runs_transformer_with_the_given_tokenizer(photo_root, tok_run, tmp_path):
    from hvar.sr import load_hvar

    first, second = tmp_path / "first", tmp_path / "second"
    main(["--preset", "tiny", "--tokenizer", str(tok_run), "--out", str(first), "--steps", "2",
          "--dpo", "off", "--threads", "1", "--batch-size", "2", "--no-eval"])  # fmt: skip
    main(["--init", str(first), "--tokenizer", str(tok_run), "--out", str(second), "--steps", "1",
          "--threads", "1", "--batch-size", "2", "--lr", "1e-9", "--no-eval"])  # fmt: skip
    a, b = load_hvar(first), load_hvar(second)
    assert b.cfg.transformer.dpo_mode == "off"  # --init's transformer config, not the preset's
    for k, v in a.transformer.state_dict().items():  # one step at a vanishing rate: still --init's weights
        assert torch.allclose(v, b.transformer.state_dict()[k], atol=1e-6), k
    assert json.loads((second / "state.json").read_text())["init"] == str(first)


def test_floor_batches_give_the_hr_centre_tile_and_the_floors_x1_or_x4_of_it(photo_root, tmp_path):
    from hvar.config import FLOOR_PRESETS
    from hvar.floor import Floor
    from hvar.pairs import Pairs, build
    from hvar.train_transformer import floor_batches

    pairs = Pairs(build(tmp_path / "pairs", count=4, lr_side=24, workers=1))
    torch.manual_seed(0)
    floor = Floor(FLOOR_PRESETS["tiny"])
    hr, x1 = next(floor_batches(pairs, floor, 16, seed=0, batch=2, condition="x1"))
    assert hr.shape == (2, 3, 64, 64) and x1.shape == (2, 3, 16, 16)
    assert -1 <= float(x1.min()) and float(x1.max()) <= 1
    # x1 is the centre of the floor's output on the whole 24 px LR (it saw context, not zero padding)
    raw = next(floor_batches(pairs, floor, 24, seed=0, batch=2, condition="x1"))[1]
    assert torch.equal(raw[..., 4:20, 4:20], x1)
    _, x4 = next(floor_batches(pairs, floor, 16, seed=0, batch=2))  # the default: x4, at the HR side
    raw = next(floor_batches(pairs, floor, 24, seed=0, batch=2))[1]
    assert x4.shape == (2, 3, 64, 64) and torch.equal(raw[..., 16:80, 16:80], x4)


def test_a_run_on_the_floors_output_records_its_floor_and_resumes_on_it(photo_root, tok_run, tmp_path):
    from hvar.config import FLOOR_PRESETS
    from hvar.floor import Floor, save_floor
    from hvar.pairs import build

    pairs = build(tmp_path / "pairs", count=4, lr_side=24, workers=1)
    save_floor(Floor(FLOOR_PRESETS["tiny"]), tmp_path / "floor")
    out = tmp_path / "run"
    main(["--preset", "tiny", "--tokenizer", str(tok_run), "--out", str(out), "--steps", "2",
          "--threads", "1", "--batch-size", "2", "--floor", str(tmp_path / "floor"), "--pairs", str(pairs),
          "--no-eval"])  # fmt: skip
    main(["--out", str(out), "--resume", "--steps", "3", "--threads", "1", "--no-eval"])
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 3 and state["floor"] == str(tmp_path / "floor")
    assert json.loads((out / "config.json").read_text())["transformer"]["condition"] == "x4"


def test_a_hinted_run_starts_from_a_plain_runs_weights(photo_root, tok_run, tmp_path):
    from hvar.config import FLOOR_PRESETS
    from hvar.floor import Floor, save_floor
    from hvar.pairs import build
    from hvar.sr import load_hvar

    pairs = build(tmp_path / "pairs", count=4, lr_side=24, workers=1)
    save_floor(Floor(FLOOR_PRESETS["tiny"]), tmp_path / "floor")
    common = ["--tokenizer", str(tok_run), "--threads", "1", "--batch-size", "2", "--no-eval",
              "--floor", str(tmp_path / "floor"), "--pairs", str(pairs)]  # fmt: skip
    main(["--preset", "tiny", "--out", str(tmp_path / "plain"), "--steps", "1", *common])
    main(
        [
            "--init",
            str(tmp_path / "plain"),
            "--hint",
            "--out",
            str(tmp_path / "hint"),
            "--steps",
            "1",
            *common,
        ]
    )
    plain, hint = load_hvar(tmp_path / "plain"), load_hvar(tmp_path / "hint")
    assert hint.cfg.transformer.hint and not plain.cfg.transformer.hint
    assert float(hint.transformer.hint_embed.weight.detach().abs().sum()) > 0  # one step moved it off zero
