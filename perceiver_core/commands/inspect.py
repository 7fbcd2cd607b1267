"""`perceiver inspect FILE`: what a checkpoint holds (pipeline, components, plugins, step, metrics, parameter count)
without building its model."""

from __future__ import annotations

import json


def cmd_inspect(args) -> int:
    from ..runtime.checkpoint import inspect_checkpoint

    info = inspect_checkpoint(args.checkpoint)
    if args.json:
        print(json.dumps(info, indent=2), file=getattr(args, "stdout", None))
        return 0
    lines = [f"file        {info['file']} ({info['bytes']:,} bytes)",
             f"pipeline    {info['pipeline']}: {info['description']}",
             "components  " + ", ".join(f"{k}={v}" for k, v in info["components"].items()),
             f"parameters  {info['num_parameters']:,}",
             f"step        {info['step']}",
             "metrics     " + (", ".join(f"{k}={v}" for k, v in info["metrics"].items()) or "none"),
             "plugins     " + ", ".join(f"{k} {v}" for k, v in info["plugins"].items()),
             f"core        perceiver-core {info['core_version']} (API {info['core_api']})"]
    print("\n".join(lines))
    return 0
