"""Registry files: pipelines as validated data (no torch is imported here).

    file.py     load_registry: read, merge and resolve registry files into PipelineSpecs (file:line errors)
    locate.py   TOML key path -> line number, for error messages
    spec.py     PipelineSpec and ComponentChoice: a resolved, validated pipeline
    models.py   one pydantic model per pipeline table, from the installed plugins' config models
    schema.py   the JSON schema of a registry file, from the same models
    presets/    the papers' configurations shipped with the core (presets.toml)

Depends on: config, errors, plugins/ (component names). Never on model/: building a model from a spec is
model/build.py's job, which keeps the layers acyclic.
"""
