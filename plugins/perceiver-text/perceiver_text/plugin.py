"""Hook implementations: names and references only, so listing stays free of torch."""

from perceiver_core import hookimpl

_CFG = "perceiver_text.configs"


@hookimpl
def perceiver_register_components(registry) -> None:
    registry.add("preprocessor", "text.bytes", factory="perceiver_text.preprocessor:BytePreprocessor",
                 config=f"{_CFG}:BytesConfig",
                 description="UTF-8 byte ids (HF's byte vocabulary) -> embedding + learned positions; padding "
                             "mask; optional span masking for MLM")
    registry.add("decoder", "text.mlm_decoder", factory="perceiver_text.decoder:MaskedLMDecoder",
                 config=f"{_CFG}:MaskedLMDecoderConfig",
                 description="one learned query per output byte, logits tied to the input byte embedding")
    registry.add("task", "text.mlm", factory="perceiver_text.task:MaskedLMTask", config=f"{_CFG}:MaskedLMTaskConfig",
                 description="masked language modelling: cross-entropy on masked bytes only; fills masks")
    registry.add("dataset", "text.docstrings", factory="perceiver_text.corpus:DocstringCorpus",
                 config=f"{_CFG}:DocstringsConfig",
                 description="English prose from the Python standard library's docstrings (offline)")
    registry.add("dataset", "text.files", factory="perceiver_text.files:TextFilesDataset",
                 config=f"{_CFG}:TextFilesConfig",
                 description="your own text: .txt files (class folders or loose), a manifest, or a JSON lines / "
                             "CSV / Parquet table with text and optional label columns")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_text", "pipelines.toml")  # package data: found in wheels and checkouts
    registry.add_registry_file("perceiver_text", "presets.toml", presets=True)  # the papers' configurations
