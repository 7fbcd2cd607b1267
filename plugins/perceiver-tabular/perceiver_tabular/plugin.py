"""Hook implementations: names and "module:attr" references only, so listing plugins stays free of torch."""

from perceiver_core import hookimpl

_DATASETS = {
    "wine": ("WineDataset", "WineConfig",
             "scikit-learn's wine table: 13 chemical measurements, 3 cultivars; fixed stratified split (offline)"),
    "breast_cancer": ("BreastCancerDataset", "BreastCancerConfig",
                      "scikit-learn's breast cancer table: 30 features, malignant/benign; fixed stratified split "
                      "(offline)"),
    "iris": ("IrisDataset", "IrisConfig",
             "scikit-learn's iris table: 4 measurements, 3 species; fixed stratified split (offline)"),
}


@hookimpl
def perceiver_register_components(registry) -> None:
    registry.add("preprocessor", "tabular.features", factory="perceiver_tabular.preprocessor:FeaturePreprocessor",
                 config="perceiver_tabular.configs:FeaturesConfig",
                 description="one input element per feature column: standardised value x learned scale + "
                             "learned column embedding; missing values masked")
    for name, (factory, config, description) in _DATASETS.items():
        registry.add("dataset", f"tabular.{name}", factory=f"perceiver_tabular.dataset:{factory}",
                     config=f"perceiver_tabular.configs:{config}", description=description)
    registry.add("dataset", "tabular.file", factory="perceiver_tabular.files:TableFileDataset",
                 config="perceiver_tabular.configs:TableFileConfig",
                 description="your own CSV or Parquet table: a named target column, numeric and categorical "
                             "columns, missing values masked; read lazily")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_tabular", "pipelines.toml")  # package data: found in wheels and checkouts
