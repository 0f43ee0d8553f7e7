import math

import pytest
import torch

from hvar.config import TransformerConfig
from hvar.dpo import hvar_loss, token_log_likelihood

BETA, LAM = 0.2, 1.0
SEGMENTS = (1, 1)  # two tokens, one per "segment"


def hand_case():
    """One HR and one LR sequence of two tokens over a vocabulary of two.

    HR: position 0 has p(token 0) = 3/4, position 1 has p(token 1) = 1/2 -> l_HR = (log 3/4 + log 1/2) / 2
    LR: both positions uniform                                            -> l_LR = log 1/2"""
    logits = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]], requires_grad=True)
    idx = torch.tensor([[0, 1], [0, 0]])
    return logits, idx


def test_dpo_loss_value_and_gradient_on_a_hand_computable_case():
    logits, idx = hand_case()
    loss, logs = hvar_loss(logits, idx, TransformerConfig(dpo_beta=BETA, dpo_lambda=LAM), SEGMENTS)
    l_hr = (math.log(0.75) + math.log(0.5)) / 2
    l_lr = math.log(0.5)
    margin = l_hr - l_lr  # = log(3/2) / 2
    expect = -l_hr + LAM * math.log1p(math.exp(-BETA * margin))
    assert loss.item() == pytest.approx(expect, abs=1e-6)
    assert logs["margin"] == pytest.approx(margin, abs=1e-6) and logs["ce"] == pytest.approx(-l_hr, abs=1e-6)

    loss.backward()
    sig = 1 / (1 + math.exp(BETA * margin))  # sigma(-beta * margin)
    d_lhr, d_llr = -1 - LAM * BETA * sig, LAM * BETA * sig
    # d l / d logits[pos] = (onehot(token) - softmax) / L, with L = 2 tokens
    p_hr = [[0.75, 0.25], [0.5, 0.5]]
    onehot_hr = [[1, 0], [0, 1]]
    grad_hr = [
        [d_lhr * (o - p) / 2 for o, p in zip(oh, pr, strict=True)]
        for oh, pr in zip(onehot_hr, p_hr, strict=True)
    ]
    grad_lr = [[d_llr * (o - 0.5) / 2 for o in oh] for oh in ([1, 0], [1, 0])]
    torch.testing.assert_close(logits.grad, torch.tensor([grad_hr, grad_lr]), rtol=0, atol=1e-6)


def test_reference_form_subtracts_the_reference_margin():
    logits, idx = hand_case()
    cfg = TransformerConfig(dpo_mode="reference")
    loss, logs = hvar_loss(logits, idx, cfg, SEGMENTS, ref_logits_BLV=logits.detach())
    assert logs["margin"] == pytest.approx(0.0, abs=1e-7)  # the policy is its own reference
    assert logs["dpo"] == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        hvar_loss(logits, idx, cfg, SEGMENTS)


def test_dpo_off_is_plain_cross_entropy_with_per_segment_logs():
    logits, idx = hand_case()
    loss, logs = hvar_loss(logits[:1], idx[:1], TransformerConfig(dpo_mode="off"), SEGMENTS)
    assert loss.item() == pytest.approx(-(math.log(0.75) + math.log(0.5)) / 2, abs=1e-6)
    assert logs["ce_seg0"] == pytest.approx(-math.log(0.75), abs=1e-6)
    assert logs["ce_seg1"] == pytest.approx(-math.log(0.5), abs=1e-6)
    assert logs["acc_seg0"] == 1.0 and "dpo" not in logs


def test_token_log_likelihood_is_log_softmax_at_the_target():
    logits = torch.randn(2, 5, 7)
    idx = torch.randint(0, 7, (2, 5))
    ref = torch.log_softmax(logits, -1)[torch.arange(2)[:, None], torch.arange(5)[None], idx]
    torch.testing.assert_close(token_log_likelihood(logits, idx), ref)
