"""H-VAR: multi-scale image super-resolution with one auto-regressive model, behind a restoration stage.

Modules have one job each. Measurement: `imresize` (MATLAB bicubic), `metrics` (PSNR/SSIM on Y), `niqe`
(no-reference quality), `degrade` (bicubic and realistic LR synthesis), `eval` (the benchmark protocol),
`tiling` (how images are cut and stitched, as the runner does), `eval_sr` (a model on the protocol).
Restoration stage: `floor` (SPAN with x1/x2/x4 heads), `pairs` (cached training pairs), `train_floor`,
`export_floor`. Generative stage: `tokenizer`, `transformer`, `sr`, their trainers and `export`.
"""
