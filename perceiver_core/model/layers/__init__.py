"""Building blocks shared by encoders and decoders: no component lives here, only layers and their kernels.

    attention.py    MultiHeadAttention, CrossAttention, SelfAttention, MLP (DeepMind's semantics)
    kernels.py      the attention kernel router (SDPA back-ends, materialised attention, chunked keys) and its
                    per-backend `AttentionPolicy`
    compile.py      regional torch.compile of attention blocks
    cuda_graphs.py  GraphedInference: CUDA graphs per input shape
"""
