"""Version of the core distribution and of the plugin API it offers.

`CORE_API_VERSION` is what plugins declare (entry-point group `perceiver.core_api`). It changes only when the
hook specifications or the component contracts change incompatibly; the distribution version changes with every
release.
"""

__version__ = "0.1.0"
CORE_API_VERSION = "1"
