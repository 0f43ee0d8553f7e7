"""The training loss: teacher-forced cross-entropy on the HR tokens plus the DPO regularizer.

H-VAR's regularizer treats the tokens of the HR image as the preferred sequence and the tokens of the
LR image (upsampled bilinearly to the HR size) as the rejected one, so the model cannot win by copying
the LR tokens, which overlap heavily with the HR ones at coarse scales:

    L = CE(z_HR) + lambda * softplus(-beta * (l(z_HR) - l(z_LR)))                    (dpo_mode "simple")

with l the mean per-token log-likelihood under teacher forcing and CE = -l(z_HR) averaged over the
batch. The standard DPO form measures both against a frozen reference model:

    margin = (l(z_HR) - l_ref(z_HR)) - (l(z_LR) - l_ref(z_LR))                    (dpo_mode "reference")

Both sequences go through the model in one batched forward pass: logits for [HR; LR] along the batch
(`loss_on_batch` tokenizes a batch of crops with the frozen HIT and does that forward).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .config import TransformerConfig

if TYPE_CHECKING:
    from .sr import HVAR
    from .transformer import NextScaleTransformer


def token_log_likelihood(logits_BLV: torch.Tensor, idx_BL: torch.Tensor) -> torch.Tensor:
    """log p(token) at every position, logp_BL (float32)."""
    return torch.log_softmax(logits_BLV.float(), dim=-1).gather(-1, idx_BL.unsqueeze(-1)).squeeze(-1)


def segment_spans(tokens_per_segment: tuple[int, ...]) -> list[tuple[int, int]]:
    """Token span (begin, end) of every segment in a full sequence."""
    out, b = [], 0
    for n in tokens_per_segment:
        out.append((b, b + n))
        b += n
    return out


def hvar_loss(
    logits_BLV: torch.Tensor,
    idx_BL: torch.Tensor,
    cfg: TransformerConfig,
    tokens_per_segment: tuple[int, ...],
    ref_logits_BLV: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch. With DPO the batch is [HR; LR] (2B rows, HR first); with dpo_mode "off" or
    dpo_lambda 0 it is the B HR rows only. Returns the loss and floats to log (ce, ce_seg*, acc_seg*,
    and with DPO: dpo, l_hr, l_lr, margin)."""
    logp_BL = token_log_likelihood(logits_BLV, idx_BL)
    use_dpo = cfg.dpo_mode != "off" and cfg.dpo_lambda > 0
    B = idx_BL.shape[0] // 2 if use_dpo else idx_BL.shape[0]
    l_B2 = logp_BL.mean(dim=1)  # mean per-token log-likelihood of every sequence
    ce = -l_B2[:B].mean()
    logs = {"ce": float(ce.detach())}
    with torch.no_grad():
        hit_BL = logits_BLV[:B].argmax(-1) == idx_BL[:B]
        for n, (b, e) in enumerate(segment_spans(tokens_per_segment)):
            logs[f"ce_seg{n}"] = float(-logp_BL[:B, b:e].mean())
            logs[f"acc_seg{n}"] = float(hit_BL[:, b:e].float().mean())
    if not use_dpo:
        logs["loss"] = logs["ce"]
        return ce, logs

    margin_B = l_B2[:B] - l_B2[B:]
    if cfg.dpo_mode == "reference":
        if ref_logits_BLV is None:
            raise ValueError("dpo_mode 'reference' needs the reference model's logits")
        with torch.no_grad():
            ref_B2 = token_log_likelihood(ref_logits_BLV, idx_BL).mean(dim=1)
        margin_B = margin_B - (ref_B2[:B] - ref_B2[B:])
    dpo = F.softplus(-cfg.dpo_beta * margin_B).mean()
    loss = ce + cfg.dpo_lambda * dpo
    logs |= {
        "dpo": float(dpo.detach()),
        "l_hr": float(l_B2[:B].detach().mean()),
        "l_lr": float(l_B2[B:].detach().mean()),
        "margin": float(margin_B.detach().mean()),
        "loss": float(loss.detach()),
    }
    return loss, logs


def loss_on_batch(
    transformer: torch.nn.Module,
    hvar: HVAR,
    hr_B3HH: torch.Tensor,
    lr_B3TT: torch.Tensor,
    ref: NextScaleTransformer | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Tokenize (frozen HIT, fp32), then one forward of `transformer` (the DDP-wrapped one in training)
    on [HR; LR] sequences sharing their condition when DPO is on, HR only when off; bf16 autocast on a
    GPU."""
    tcfg, tok_cfg = hvar.cfg.transformer, hvar.cfg.tokenizer
    use_dpo = tcfg.dpo_mode != "off" and tcfg.dpo_lambda > 0
    with torch.no_grad():
        x_BlCv, idx_BL = hvar.teacher_inputs(hvar.tokenizer.img_to_idx(hr_B3HH))
        hint_BL = None
        if use_dpo or tcfg.hint:
            f_BCvPP, idx_lr = hvar.condition_and_lr_tokens(lr_B3TT)
            hint_BL = torch.cat(idx_lr, dim=1) if tcfg.hint else None
        else:
            f_BCvPP = hvar.condition(lr_B3TT)
        if use_dpo:
            x_lr, idx_lr_BL = hvar.teacher_inputs(idx_lr)
            x_BlCv, idx_BL = torch.cat([x_BlCv, x_lr]), torch.cat([idx_BL, idx_lr_BL])
    cuda = hr_B3HH.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    with autocast:
        logits_BLV = transformer(f_BCvPP, x_BlCv, hint_BL)
        ref_logits = None
        if ref is not None and use_dpo and tcfg.dpo_mode == "reference":
            with torch.no_grad():
                ref_logits = ref(f_BCvPP, x_BlCv, hint_BL)
    return hvar_loss(logits_BLV, idx_BL, tcfg, tok_cfg.tokens_per_segment, ref_logits)
