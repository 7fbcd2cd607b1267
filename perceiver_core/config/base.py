"""The base of every component config: unknown keys are errors, and every field is documented."""

from pydantic import BaseModel, ConfigDict


class ComponentConfig(BaseModel):
    """Base class for component configs. Subclass it and describe each field with `Field(description=...)`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
