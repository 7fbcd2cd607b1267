"""The model layer: everything that is an `nn.Module` or computes one.

    pipeline.py      Pipeline (preprocessor -> position -> encoder -> decoder -> task) and build_from_spec
    build.py         build_pipeline / build_preset: a registry file + the plugins -> a model (composes registry/)
    input_stream.py  InputStream: a ByteArray whose position features are computed on demand or per chunk
    encoders/        Perceiver (repeated cross-attends, configurable sharing), Perceiver IO
    decoders/        classification, basic (learned or Fourier queries), pooled
    queries/         query builders: learned, Fourier of output positions
    positions/       position encodings: fourier, learned, none
    tasks/           loss, metrics and postprocessing (classification)
    layers/          attention, attention kernels and their policy, regional compile, CUDA graphs

Depends on: byte_array, interfaces, config, errors; plugins/ to look factories up; registry/ only in build.py.
"""
