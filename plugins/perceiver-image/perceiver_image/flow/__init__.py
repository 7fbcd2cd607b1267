"""Dense outputs for image pairs: optical flow and stereo disparity with Perceiver IO (DeepMind's flow model).

    frames [B, 2, C, H, W] --patches (k x k per pixel, both frames: 2*k*k*C)--> Linear --> [B, H*W, 64]
      + 2-D Fourier positions (64 bands at the training size)          --> [B, H*W, 322]
      --encoder--> latents [B, N, D] --queries = the inputs, cross-attend, zero-init Linear, / 100--> [B, H*W, 2]

preprocessor.py (image.flow), decoder.py (image.flow_decoder), task.py (image.flow: end-point error, outliers,
tiled prediction), augment.py (crops, flips, frame reversal, brightness), tiling.py (overlapping tiles blended by
distance to the edge), io.py (bounded .flo/.pfm/.png/.npy readers and writers), colour.py (the flow colour wheel),
pairs.py (image.pairs: the user's own frame pairs), stereo.py (image.stereo_motorcycle: scikit-image's Middlebury
pair as a disparity task).
"""
