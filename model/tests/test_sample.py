import pytest
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


def test_tie_distance_is_how_far_u_is_from_a_boundary_or_the_chosen_token_from_a_swap():
    from hvar.sample import tie_distance

    p = torch.softmax(LOGITS.topk(3).values.double(), 0)  # top-3 renormalised: .506, .307, .186
    u = torch.tensor([[p[0] - 0.01, p[0] + p[1] + 0.002, 0.0]])
    d = tie_distance(LOGITS.expand(1, 3, -1), u, 1.0, top_k=3)
    # near a boundary; near the other; far from both, but the most likely token is p0 - p1 from a swap
    torch.testing.assert_close(d, torch.tensor([[0.01, 0.002, float(p[0] - p[1])]]), rtol=0, atol=1e-6)


def test_greedy_tie_distance_is_the_gap_between_the_two_most_likely_tokens():
    from hvar.sample import tie_distance

    p = torch.softmax(LOGITS.double(), 0).sort(descending=True).values
    d = tie_distance(LOGITS.expand(1, 1, -1), torch.zeros(1, 1), 0.0)
    torch.testing.assert_close(d, torch.tensor([[float(p[0] - p[1])]]), rtol=0, atol=1e-6)


def test_a_draw_from_the_one_likeliest_token_is_as_near_a_tie_as_its_runner_up():
    from hvar.sample import tie_distance

    p = torch.softmax(LOGITS.topk(2).values.double(), 0)  # what can flip the argmax: the runner-up
    d = tie_distance(LOGITS.expand(1, 2, -1), torch.tensor([[0.0, 0.9]]), 1.0, top_k=1)
    torch.testing.assert_close(d, torch.full((1, 2), float(p[0] - p[1])), rtol=0, atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_rounding_the_logits_flips_only_draws_that_were_near_a_tie(temperature):
    """What the export's parity check relies on: another runtime's rounding (here 1e-4 on the logits)
    changes a token only where the tie distance is of the order of the rounding."""
    from hvar.sample import tie_distance

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 20000, 64, generator=g) * 3
    u = torch.rand(1, 20000, generator=g)
    bumped = logits + torch.randn(logits.shape, generator=g) * 1e-4
    flipped = sample_top_k(logits, u, temperature) != sample_top_k(bumped, u, temperature)
    d = tie_distance(logits, u, temperature)
    assert flipped.sum() > 0
    assert d[flipped].max() < 1e-4
    assert (d < 1e-4).float().mean() < 0.05  # the bound is tight: most draws are far from a tie
