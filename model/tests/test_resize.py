import pytest
import torch
import torch.nn.functional as F

from hvar.resize import area_down, area_half, area_matrix, bicubic_matrix, resize_with

PAIRS = [(1, 4), (2, 16), (3, 8), (4, 5), (5, 16), (8, 10), (13, 16), (16, 4), (16, 10), (12, 5), (4, 32)]


@pytest.mark.parametrize("n_in,n_out", PAIRS)
def test_bicubic_matrix_matches_interpolate_bicubic(n_in, n_out):
    x = torch.randn(2, 3, n_in, n_in)
    m = bicubic_matrix(n_in, n_out)
    ref = F.interpolate(x, size=(n_out, n_out), mode="bicubic", align_corners=False)
    torch.testing.assert_close(resize_with(x, m, m), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_in,n_out", PAIRS)
def test_area_matrix_matches_interpolate_area(n_in, n_out):
    x = torch.randn(2, 3, n_in, n_in)
    m = area_matrix(n_in, n_out)
    ref = F.interpolate(x, size=(n_out, n_out), mode="area")
    torch.testing.assert_close(resize_with(x, m, m), ref, atol=1e-5, rtol=1e-5)


def test_non_square_resize_uses_one_matrix_per_axis():
    x = torch.randn(1, 2, 4, 6)
    ref = F.interpolate(x, size=(8, 3), mode="bicubic", align_corners=False)
    torch.testing.assert_close(
        resize_with(x, bicubic_matrix(4, 8), bicubic_matrix(6, 3)), ref, atol=1e-5, rtol=1e-5
    )


def test_area_down_by_four_is_halving_twice_bit_for_bit():
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(area_down(x, 4), area_half(area_half(x)))
    torch.testing.assert_close(area_down(x, 4), F.avg_pool2d(x, 4))


def test_area_down_rejects_factors_that_are_not_powers_of_two():
    with pytest.raises(ValueError):
        area_down(torch.zeros(1, 3, 12, 12), 3)
