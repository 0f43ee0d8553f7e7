"""hvar: multi-scale image super-resolution, one pass giving x1 (the input cleaned), x2 and x4.

Two models. H-VAR (Sanchez et al., 2025): a hierarchical multi-scale tokenizer and a next-scale
transformer conditioned on the LR image, trained with cross-entropy and a DPO regularizer
(model/checkpoints/hvar-base, exported on demand). In front of it Model 2.0 puts a restoration stage, "the
floor" (SPAN's body with x1, x2 and x4 heads), which is what the service runs today on its own
(gpu-runner/models/hvar). Both are exported to one ONNX contract that the runner executes.

Modules, one job each:
  settings     `config` (every size from one config), `paths` (the repo and ../shared; listing images)
  measurement  `imresize` (MATLAB bicubic), `metrics` (PSNR/SSIM on Y), `niqe`, `degrade` (bicubic and
               realistic LR), `eval` (the benchmark protocol), `tiling` (cut and stitch as the runner),
               `eval_sr` (a model on the protocol), `figure` (before/after figure)
  restoration  `floor`, `pairs` (cached training pairs), `train_floor`
  generation   `vae`, `resize`, `quantizer`, `tokenizer` (HIT), `transformer`, `sample`, `sr` (H-VAR),
               `dpo` (its loss), `data` (training crops), `train_tokenizer`, `train_transformer`, `ddp`,
               `eval_tokenizer`, `eval_tokens`, `swap_decoder`
  training     `training` (what the three trainers share: run folder, budget, schedule)
  shipping     `contract` (the ONNX model contract), `export` and `export_floor` (verified exports),
               `acceptance` (the runner-side checks every export passes)

Shape suffixes (as in VAR): a tensor's name ends with its axes, e.g. `x_BCHW`, `logits_BlV`, `img_HWC`
(numpy images are height x width x channels); `_1` is a one-element axis.
  B     batch                            N    batch of the ONNX graph (the runner's tiles)
  3     RGB                              C    channels, a layer's width; Cv the VAE latent's (cvae)
  H W   image height and width           h w  feature-map height and width
  T     LR tile side (HR tile 4T)        P    latent side of the last scale; p one scale's (patch_nums)
  L     tokens of all scales             l    tokens of one scale;  Nc condition tokens (P x P)
  V     codebook size (vocabulary)       S    scales (patch_nums);  K top-k candidates
  D     width of the AdaLN condition
Local meanings, said where they are used: in attention H counts heads and c is a head's width (VAR's
`BHLc`); N also counts flattened vectors (the quantizer) or every position of the transformer's
sequence (Nc + L); `imresize` indexes its outputs O by kernel taps T.
"""
