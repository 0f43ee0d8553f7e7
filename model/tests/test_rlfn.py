"""RLFN written from its description: the peer the runner's benchmark measures the model against."""

import numpy as np
import pytest
import torch

from hvar import eval as protocol
from hvar.rlfn import RLFN, RLFN_WEIGHTS, RLFNConfig, load_rlfn, rlfn_state

TINY = RLFNConfig(ch=8, esa_ch=4, blocks=2)


def test_output_is_scale_times_the_input_of_any_size():
    torch.manual_seed(0)
    with torch.no_grad():
        assert RLFN(TINY)(torch.rand(2, 3, 20, 28) * 255).shape == (2, 3, 80, 112)


def test_its_attention_reaches_beyond_its_convolutions():
    """Unlike SPAN, RLFN's output moves with pixels outside its convolutions' radius (1 per 3x3 conv: 9 LR
    pixels here): the attention's pooled map spans much of the tile, which is why its tiles may show seams."""
    torch.manual_seed(0)
    model = RLFN(TINY).eval()
    assert model.conv_radius == 9
    lr = torch.rand(1, 3, 48, 48) * 255
    far = lr.clone()
    far[..., 20, 20] = 255 - far[..., 20, 20]  # 16 LR pixels from the corner compared below
    with torch.no_grad():
        a, b = model(lr), model(far)
    assert not torch.equal(a[..., :16, :16], b[..., :16, :16])


@pytest.mark.benchmark_data("pretrained")
def test_the_published_checkpoint_loads_into_every_weight():
    assert set(rlfn_state(RLFN_WEIGHTS)) == set(RLFN().state_dict())


@pytest.mark.benchmark_data("pretrained", "datasets")
def test_pretrained_rlfn_reproduces_its_published_set5_x4_score():
    """RLFN x4 on Set5, MATLAB bicubic LR, PSNR/SSIM-Y: 32.24 / 0.8953 (../shared/pretrained)."""
    model = load_rlfn()

    def method(lr: np.ndarray, scale: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            y = model(x)[0]
        return y.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()

    _, folder = protocol.resolve_dataset("Set5")
    r = protocol.evaluate_dataset(folder, 4, method, progress=False)
    assert r["psnr"] == pytest.approx(32.24, abs=0.02) and r["ssim"] == pytest.approx(0.8953, abs=0.0005)
