import torch

from hvar.sample import sample_top_k

LOGITS = torch.tensor([2.0, -1.0, 0.5, 1.5, -3.0, 0.0])


def frequencies(idx: torch.Tensor, V: int) -> torch.Tensor:
    return torch.bincount(idx.flatten(), minlength=V).double() / idx.numel()


def test_frequencies_match_the_top_k_distribution_on_a_fixed_logit_vector():
    N, k, t = 20000, 3, 0.7
    u = (torch.arange(N, dtype=torch.float64) + 0.5) / N  # an even grid of uniforms: exact frequencies
    idx = sample_top_k(LOGITS.double().expand(N, -1).unsqueeze(0), u.unsqueeze(0), torch.tensor([t]), k)
    top = LOGITS.topk(k)
    expect = torch.zeros(6, dtype=torch.float64)
    expect[top.indices] = torch.softmax(top.values.double() / t, 0)
    torch.testing.assert_close(frequencies(idx, 6), expect, rtol=0, atol=2 / N)


def test_random_uniforms_also_match_within_sampling_error():
    N = 40000
    u = torch.rand(1, N, generator=torch.Generator().manual_seed(0))
    idx = sample_top_k(LOGITS.expand(N, -1).unsqueeze(0), u, 1.0, top_k=0)
    torch.testing.assert_close(frequencies(idx, 6), torch.softmax(LOGITS.double(), 0), rtol=0, atol=0.01)


def test_temperature_zero_is_the_argmax_whatever_the_noise():
    logits = torch.randn(2, 7, 11, generator=torch.Generator().manual_seed(0))
    for u in (torch.zeros(2, 7), torch.rand(2, 7), torch.full((2, 7), 0.999)):
        assert torch.equal(sample_top_k(logits, u, torch.tensor([0.0]), 5), logits.argmax(-1))


def test_extreme_uniforms_pick_the_most_and_the_least_likely_of_the_top_k():
    logits = LOGITS.expand(1, 2, -1)
    idx = sample_top_k(logits, torch.tensor([[0.0, 0.9999999]]), 1.0, top_k=3)
    assert idx.tolist() == [[0, 2]]  # ranks: 2.0 (index 0), 1.5 (3), 0.5 (2)
