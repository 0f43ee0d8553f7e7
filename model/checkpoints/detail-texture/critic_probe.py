"""Can a fresh patch critic tell detail-base's x4 (decoded from the HR tile's own tokens) from the HR?

    cd model && .venv/bin/python checkpoints/detail-texture/critic_probe.py image
    cd model && .venv/bin/python checkpoints/detail-texture/critic_probe.py residual

Four fixed batches of 8 training pairs: the critic trains 60 steps on three and is scored on the fourth
(hinge loss; patch accuracy = the share of patches it puts on the right side of 0). `image` shows it
the images, as the first critic runs did; `residual` shows it what each adds to the floor's x4, as
`train_detail` now does.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from hvar.detail import centre_tiles, load_detail
from hvar.discriminator import PatchDiscriminator, d_hinge
from hvar.pairs import Pairs
from hvar.train_detail import CRITIC_BETAS, RESIDUAL_GAIN
from hvar.train_floor import to_tensors

ap = argparse.ArgumentParser()
ap.add_argument("view", choices=("image", "residual"))
ap.add_argument("--gain", type=float, default=RESIDUAL_GAIN, help="as train_detail shows its critic")
args = ap.parse_args()
torch.set_num_threads(2)
torch.manual_seed(0)
model = load_detail(Path("checkpoints/detail-base")).eval()
pairs, rng = Pairs(Path(".data/pairs")), np.random.default_rng(0)
batches = []  # (HR x4, decoded x4, floor x4), each B 3 4T 4T
with torch.no_grad():
    for _ in range(4):
        batch = to_tensors({"x4": pairs.batch(rng, 8)["x4"]}, int(rng.integers(8)), "cpu")["x4"]
        hr, guides, targets = centre_tiles(batch, model.floor_outputs(batch["lr"]), model.cfg.tile)
        batches.append((targets[2], model.decode(model.tokens(hr), guides)[2], guides[2]))
real_res = torch.stack([(r - f).std() for r, _, f in batches]).mean()
fake_res = torch.stack([(d - f).std() for _, d, f in batches]).mean()
print(f"std of the difference from the floor's x4: HR {real_res:.4f}, decoded {fake_res:.4f}")


def shown(img: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    return img if args.view == "image" else args.gain * (img - floor)


critic = PatchDiscriminator()
opt = torch.optim.AdamW(critic.parameters(), lr=4e-4, betas=CRITIC_BETAS, weight_decay=0.0)
for step in range(60):
    real, fake, floor = batches[step % 3]
    loss = d_hinge(critic(shown(real, floor)), critic(shown(fake, floor)))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 10 == 9:
        with torch.no_grad():
            real, fake, floor = batches[3]
            r, f = critic(shown(real, floor)), critic(shown(fake, floor))
            acc = 0.5 * (float((r > 0).float().mean()) + float((f < 0).float().mean()))
        held_out = float(d_hinge(r, f))
        print(f"{args.view} step {step + 1}: held-out loss {held_out:.3f}, patch accuracy {acc:.3f}")
