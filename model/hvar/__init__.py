"""H-VAR: multi-scale image super-resolution with one auto-regressive model.

Modules have one job each: `imresize` (MATLAB bicubic), `metrics` (PSNR/SSIM on Y),
`degrade` (bicubic and realistic LR synthesis), `eval` (the benchmark protocol and its CLI).
"""
