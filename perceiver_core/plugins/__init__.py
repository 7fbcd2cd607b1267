"""The plugin machinery (no torch is imported here).

    manager.py     PluginManager: discovers entry points, checks API versions, isolates broken plugins
    components.py  ComponentRegistry: "module:attr" references to factories and configs, resolved lazily
    guard.py       every call into plugin code guarded: stdout captured, timed, torch global state restored
    builtin.py     the core's own components, registered through the same hooks as any plugin
    check.py       `perceiver plugins check`: static checks of an installed plugin
    scaffold/      `perceiver plugin new`: templates of a working plugin

The plugin author's kit (fixtures and conformance suites) is the public `perceiver_core.testing`.
"""
