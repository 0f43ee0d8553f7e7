"""Token sampling from explicit inputs: top-k with temperature by inverse-CDF on one uniform per token.

The noise is an input (not a generator inside the model) so that a run is reproducible from its inputs,
in PyTorch and in the ONNX export alike. `temperature == 0` means greedy: the argmax, noise ignored.
Both branches are computed and selected with `torch.where`: no data-dependent Python control flow.
"""

from __future__ import annotations

import torch

MIN_TEMPERATURE = 1e-6  # keeps the division finite on the greedy branch (its result is discarded)


def sample_top_k(
    logits_BlV: torch.Tensor, u_Bl: torch.Tensor, temperature: torch.Tensor | float, top_k: int = 0
) -> torch.Tensor:
    """One token per position: the smallest rank whose cumulative top-k probability exceeds u.

    logits_BlV: scores; u_Bl: uniforms in [0, 1); temperature: scalar or [1]; top_k: 0 = whole vocab.
    Returns idx_Bl (int64)."""
    V = logits_BlV.shape[-1]
    k = V if top_k <= 0 else min(top_k, V)
    t = torch.as_tensor(temperature, dtype=logits_BlV.dtype, device=logits_BlV.device).reshape(-1)[0]
    top_BlK, idx_BlK = logits_BlV.topk(k, dim=-1)  # sorted, most likely first
    cdf_BlK = torch.softmax(top_BlK / t.clamp_min(MIN_TEMPERATURE), dim=-1).cumsum(dim=-1)
    # Rank = how many cumulative probabilities lie at or below u (scaled by the total against rounding).
    rank_Bl = (cdf_BlK <= u_Bl.unsqueeze(-1) * cdf_BlK[..., -1:]).sum(dim=-1).clamp(max=k - 1)
    sampled_Bl = idx_BlK.gather(-1, rank_Bl.unsqueeze(-1)).squeeze(-1)
    return torch.where(t > 0, sampled_Bl, idx_BlK[..., 0])


def tie_distance(
    logits_BlV: torch.Tensor, u_Bl: torch.Tensor, temperature: float, top_k: int = 0
) -> torch.Tensor:
    """How close each draw of `sample_top_k` came to choosing another token, in probability. Two
    runtimes whose logits differ by rounding can only choose differently where this is tiny.

    Sampling lays the top-k tokens out on [0, 1] in order of probability and picks the interval that
    holds u, so a draw changes when u lies near a boundary, or when the chosen token and a neighbour in
    that order are nearly equally likely (rounding can swap them, and their intervals with them): the
    smaller of the two distances. Greedy (temperature 0): the gap between the two most likely tokens."""
    V = logits_BlV.shape[-1]
    k = V if top_k <= 0 else min(top_k, V)
    if temperature <= 0 or k == 1:  # the argmax, whatever u: what can change it is the runner-up
        p_BlK = torch.softmax(logits_BlV.double().topk(max(k, 2), dim=-1).values, dim=-1)
        return (p_BlK[..., 0] - p_BlK[..., 1]).float()
    top_BlK = logits_BlV.double().topk(k, dim=-1).values
    p_BlK = torch.softmax(top_BlK / temperature, dim=-1)
    cdf_BlK = p_BlK.cumsum(dim=-1)
    u_Bl1 = u_Bl.double().unsqueeze(-1) * cdf_BlK[..., -1:]
    boundary_Bl = (cdf_BlK[..., :-1] - u_Bl1).abs().amin(dim=-1)
    rank_Bl1 = (cdf_BlK <= u_Bl1).sum(dim=-1, keepdim=True).clamp(max=k - 1)
    gaps_BlK1 = torch.nn.functional.pad(p_BlK[..., :-1] - p_BlK[..., 1:], (0, 1), value=1.0)  # to the next
    above = gaps_BlK1.gather(-1, rank_Bl1)  # gap to the next less likely token
    below = torch.nn.functional.pad(gaps_BlK1, (1, 0), value=1.0)[..., :-1].gather(-1, rank_Bl1)
    return torch.minimum(boundary_Bl, torch.minimum(above, below).squeeze(-1)).float()
