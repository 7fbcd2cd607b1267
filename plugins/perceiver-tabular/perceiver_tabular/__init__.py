"""Tabular rows for the Perceiver framework: one input element per feature column (`tabular.features`) and
scikit-learn's bundled tables as datasets (`tabular.wine`, `tabular.breast_cancer`, `tabular.iris`)."""

__version__ = "0.1.0"
