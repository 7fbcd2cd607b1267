"""Building blocks shared by encoders and decoders: no component lives here, only layers and their kernels.

    attention.py    MultiHeadAttention, CrossAttention, SelfAttention, MLP (DeepMind's semantics)
    kernels.py      the attention kernel router (SDPA back-ends, materialised attention, chunked keys) and its
                    per-backend `AttentionPolicy`
    residual.py     the residual stream's dtype (bf16 under bf16 autocast when an encoder asks for it)
    compile.py      regional torch.compile of attention blocks
    cuda_graphs.py  GraphedInference: CUDA graphs per input shape
    grouping.py     HiP: input order (raster, Morton), groups of elements, regrouping between blocks
    hip_blocks.py   HiP: a block of grouped cross-attend + self-attends (weights shared across groups), the
                    reconstruction head
"""
