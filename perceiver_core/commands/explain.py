"""`perceiver explain PIPELINE --checkpoint FILE INPUT... --out DIR`: what the latents look at.

For each input the model runs once with an attention-weights hook installed (`record_attention_weights` in
model/layers/attention.py: the plain path computes the weights; the outputs are the fused kernels' outputs).
Drawn, with matplotlib, into DIR:

- `<input>_attention.png`: the encoder's cross-attention over the input for the chosen latents (rows) and
  cross-attends (columns: the first, the second and the last of a model that repeats them): an overlay on the
  image for images (as Figure 3 of the Perceiver paper), the points coloured by attention seen from several
  sides for point clouds, the bytes highlighted for text, a curve over the index for other 1-D inputs;
- `<input>_decoder.png`: the decoder's attention over the latents (classification: one bar per latent);
- `<input>.json` with `--json`: the raw maps, head-averaged and per head, for the chosen latents.

Latents are chosen with `--latents 0,5,9`, or else the `--top K` latents the decoder attends to most (the most
focused ones, lowest entropy, when the decoder pools without attention).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError


@dataclass
class Explanation:
    """The attention of one input. input_maps: (module name, call, weights [H, N, *index_shape]) for every
    cross-attend over the input, in call order; decoder_maps: (name, call, weights [H, O, N]); latents: the
    chosen latent indices; mask: [*index_shape] real (True) or padding elements."""

    index_shape: tuple[int, ...]
    modality: str
    input_maps: list[tuple[str, int, torch.Tensor]]
    decoder_maps: list[tuple[str, int, torch.Tensor]]
    latents: list[int]
    prediction: Any
    positions: torch.Tensor | None = None  # [M, d] of the elements (point clouds, permuted pixels)
    mask: torch.Tensor | None = None
    labels: list[str] | None = None  # what each element is (text: its byte), when the preprocessor says


def _to_grid(weights: torch.Tensor, index_shape: tuple[int, ...], positions: torch.Tensor | None) -> torch.Tensor:
    """weights [..., M] in the byte array's order -> [..., *index_shape] in grid order. Elements given explicit
    grid positions (permuted pixels: positions in [-1, 1] per axis) are put back where they belong."""
    lead = weights.shape[:-1]
    if positions is not None and positions.shape[-1] == len(index_shape) and len(index_shape) > 1:
        sizes = torch.tensor(index_shape, dtype=torch.float64)
        idx = torch.round((positions.double() + 1) / 2 * (sizes - 1)).long()  # [M, d] grid coordinates
        flat = torch.zeros(len(idx), dtype=torch.long)
        for d, n in enumerate(index_shape):
            flat = flat * n + idx[:, d].clamp(0, n - 1)
        if torch.unique(flat).numel() == len(flat):  # a true permutation of the grid
            out = torch.zeros(*lead, math.prod(index_shape), dtype=weights.dtype)
            out[..., flat] = weights
            return out.reshape(*lead, *index_shape)
    return weights.reshape(*lead, *index_shape)


def choose_latents(input_maps, decoder_maps, num_latents: int, latents: Sequence[int] | None, top: int) -> list[int]:
    if latents:
        bad = [i for i in latents if not 0 <= i < num_latents]
        if bad:
            raise UserError(f"--latents {bad} out of range: the model has {num_latents} latents (0..{num_latents - 1})")
        return list(latents)
    top = max(1, min(top, num_latents))
    decoder_over_latents = [w for _, _, w in decoder_maps if w.shape[-1] == num_latents]
    if decoder_over_latents:
        score = decoder_over_latents[-1].mean(dim=0).sum(dim=0)  # [N]: attention the outputs pay each latent
    else:  # no decoder attention: the most focused latents of the first cross-attend
        p = input_maps[0][2].mean(dim=0).flatten(1)  # [N, M]
        score = (p * torch.log(p.clamp_min(1e-12))).sum(dim=1)  # negative entropy
    return score.topk(top).indices.tolist()


@torch.no_grad()
def explain_example(model, raw: Mapping[str, Any], *, latents: Sequence[int] | None = None,
                    top: int = 4) -> Explanation:
    """Run `model` on one raw example with the weights hook installed and collect its attention maps."""
    from ..data.loader import collate
    from ..model.layers.attention import record_attention_weights

    model.eval()
    prepared = model.prepare(raw)
    batch = collate([prepared])
    byte_array = model.preprocessor(batch)
    m = byte_array.num_elements
    with record_attention_weights(model, keep=lambda n: "cross" in n or n.startswith("decoder")) as records:
        outputs = model(batch)
    prediction = model.task.postprocess(outputs, batch)[0]
    positions = None if byte_array.positions is None else byte_array.positions[0].float().cpu()
    index_shape = tuple(byte_array.index_shape)
    input_maps, decoder_maps = [], []
    for r in records:
        w = r.weights[0].cpu()  # [H, N, M]
        if r.name.startswith("decoder"):
            decoder_maps.append((r.name, r.call, w))  # [H, O, N]
        elif w.shape[-1] == m:
            input_maps.append((r.name, r.call, _to_grid(w, index_shape, positions)))  # [H, N, *index_shape]
    if not input_maps:
        raise UserError("this model has no cross-attention over its input that explain can read")
    num_latents = input_maps[0][2].shape[1]
    mask = None if byte_array.mask is None else _to_grid(byte_array.mask[0].cpu(), index_shape, positions)
    labels_fn = getattr(model.preprocessor, "element_labels", None)
    labels = labels_fn(prepared) if callable(labels_fn) else None
    return Explanation(index_shape, byte_array.modality, input_maps, decoder_maps,
                       choose_latents(input_maps, decoder_maps, num_latents, latents, top), prediction,
                       positions=positions, mask=mask, labels=labels)


def _columns(maps: list) -> list[int]:
    """Which cross-attend calls to draw: all of up to four, else the first, second and last (Figure 3)."""
    n = len(maps)
    return list(range(n)) if n <= 4 else [0, 1, n - 1]


def _title(ex: Explanation, index: int) -> str:
    """"cross-attend 3 of 8 (cross_attends.1, call 2)": the position among all cross-attends, and which module
    (shared modules run several times) made it."""
    name, call, _ = ex.input_maps[index]
    module = re.sub(r"\.attention$", "", name).replace("encoder.", "")
    if len(ex.input_maps) == 1:
        return module
    return f"cross-attend {index + 1} of {len(ex.input_maps)} ({module}, call {call + 1})"


# -- drawing ----------------------------------------------------------------------------------------------------
def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("perceiver explain draws with matplotlib: pip install 'perceiver-core[plot]'") from None
    return plt


def _image_of(raw: Mapping[str, Any]):
    import numpy as np

    image = raw.get("image")
    if image is None:
        return None
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.max() > 1.0:
        a = a / 255.0
    return a


def draw_input(ex: Explanation, raw: Mapping[str, Any], path: Path, title: str) -> None:
    plt = _plt()
    cols = _columns(ex.input_maps)
    image = _image_of(raw) if len(ex.index_shape) == 2 else None
    if ex.positions is not None and ex.positions.shape[-1] == 3 and len(ex.index_shape) == 1:
        _draw_points(plt, ex, cols, path, title)
    elif len(ex.index_shape) == 2:
        _draw_image(plt, ex, cols, image, path, title)
    else:
        _draw_sequence(plt, ex, cols, path, title)


def _panels(ex: Explanation, cols: list[int], max_heads: int = 8) -> list[tuple[str, Any]]:
    """(title, fn(latent) -> map [*index_shape]) per column: one per drawn cross-attend (mean over heads); a model
    with one multi-head cross-attend gets the mean and then each head (as the paper's figures, one head each)."""
    if len(cols) == 1 and ex.input_maps[cols[0]][2].shape[0] > 1:
        maps = ex.input_maps[cols[0]][2]
        short = _title(ex, cols[0])
        panels = [(f"{short}, mean of {maps.shape[0]} heads", lambda n, maps=maps: maps.mean(dim=0)[n])]
        panels += [(f"head {h}", lambda n, maps=maps, h=h: maps[h, n]) for h in range(min(maps.shape[0], max_heads))]
        return panels
    return [(_title(ex, c), lambda n, maps=ex.input_maps[c][2]: maps.mean(dim=0)[n]) for c in cols]


def _draw_image(plt, ex: Explanation, cols: list[int], image, path: Path, title: str) -> None:
    rows = ex.latents
    panels = _panels(ex, cols)
    extra = 1 if image is not None else 0
    fig, axes = plt.subplots(len(rows), len(panels) + extra, squeeze=False,
                             figsize=(2.1 * (len(panels) + extra), 2.1 * len(rows) + 0.4))
    h, w = ex.index_shape
    extent = (0, image.shape[1], image.shape[0], 0) if image is not None else (0, w, h, 0)
    for r, latent in enumerate(rows):
        if image is not None:
            axes[r][0].imshow(image, cmap="gray", vmin=0, vmax=1, extent=extent)
            if r == 0:
                axes[r][0].set_title("input", fontsize=9)
        for c, (panel_title, fn) in enumerate(panels):
            ax = axes[r][c + extra]
            attention = fn(latent).numpy()  # [H, W]
            if image is not None:
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=extent)
                ax.imshow(attention, cmap="inferno", alpha=0.7, extent=extent, interpolation="nearest")
            else:
                ax.imshow(attention, cmap="inferno", extent=extent, interpolation="nearest")
            if r == 0:
                ax.set_title(panel_title, fontsize=8)
        axes[r][0].set_ylabel(f"latent {latent}")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


VIEWS = ((20, -60), (20, 30), (85, -90))  # (elevation, azimuth): two sides and the top


def _draw_points(plt, ex: Explanation, cols: list[int], path: Path, title: str) -> None:
    cols = [cols[0], cols[-1]] if len(cols) > 1 else cols
    rows = [(latent, call) for latent in ex.latents for call in cols]
    fig = plt.figure(figsize=(3.0 * len(VIEWS), 2.8 * len(rows)))
    pos = ex.positions.numpy()  # [M, 3]
    real = ex.mask.numpy() if ex.mask is not None else None
    if real is not None:
        pos = pos[real]
    for r, (latent, call) in enumerate(rows):
        maps = ex.input_maps[call][2]
        attention = maps.mean(dim=0)[latent].numpy()  # [M]
        if real is not None:
            attention = attention[real]
        order = attention.argsort()  # most attended drawn last, on top
        for v, (elev, azim) in enumerate(VIEWS):
            ax = fig.add_subplot(len(rows), len(VIEWS), r * len(VIEWS) + v + 1, projection="3d")
            ax.scatter(pos[order, 0], pos[order, 1], pos[order, 2], c=attention[order], cmap="plasma",
                       s=4 + 40 * attention[order] / max(attention.max(), 1e-12), depthshade=False)
            ax.view_init(elev=elev, azim=azim)
            ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_zlim(-1, 1)
            ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
            ax.set_box_aspect((1, 1, 1))
            if v == 0:
                ax.set_title(f"latent {latent}, {_title(ex, call)}", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _draw_sequence(plt, ex: Explanation, cols: list[int], path: Path, title: str) -> None:
    """1-D inputs: the bytes (or element labels) highlighted by attention, else a curve over the index."""
    rows = [(latent, call) for latent in ex.latents for call in cols]
    m = math.prod(ex.index_shape)
    shown = m
    if ex.labels is not None:  # up to the last labelled element (padding has empty labels)
        shown = max((i + 1 for i, label in enumerate(ex.labels[:m]) if label), default=m)
    if ex.labels is not None:
        per_line = 64
        lines = math.ceil(shown / per_line)
        fig, axes = plt.subplots(len(rows), 1, squeeze=False, figsize=(min(per_line, shown) * 0.22 + 1,
                                                                         (0.32 * lines + 0.5) * len(rows)))
        cmap = plt.get_cmap("Oranges")
        for r, (latent, call) in enumerate(rows):
            ax = axes[r][0]
            maps = ex.input_maps[call][2]
            attention = maps.mean(dim=0)[latent].reshape(-1)[:shown].numpy()
            top = max(float(attention.max()), 1e-12)
            for i in range(shown):
                x, y = i % per_line, i // per_line
                ax.add_patch(plt.Rectangle((x, -y - 1), 1, 1, color=cmap(attention[i] / top)))
                ax.text(x + 0.5, -y - 0.5, ex.labels[i], ha="center", va="center", fontsize=7, family="monospace")
            ax.set_xlim(0, min(per_line, shown))
            ax.set_ylim(-lines, 0)
            ax.axis("off")
            ax.set_title(f"latent {latent}, {_title(ex, call)}", fontsize=8, loc="left")
    else:
        fig, axes = plt.subplots(len(rows), 1, squeeze=False, figsize=(8, 1.6 * len(rows)))
        for r, (latent, call) in enumerate(rows):
            maps = ex.input_maps[call][2]
            attention = maps.mean(dim=0)[latent].reshape(-1).numpy()
            axes[r][0].fill_between(range(m), attention, color="tab:orange")
            axes[r][0].set_xlim(0, m - 1)
            axes[r][0].set_ylabel(f"latent {latent}", fontsize=8)
            axes[r][0].set_title(_title(ex, call), fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_decoder(ex: Explanation, path: Path, title: str) -> bool:
    """The decoder's attention over the latents: bars for few output queries, a heat map for many."""
    if not ex.decoder_maps:
        return False
    plt = _plt()
    name, _, maps = ex.decoder_maps[-1]
    weights = maps.mean(dim=0)  # [O, N]
    o, n = weights.shape
    if o <= 4:
        fig, axes = plt.subplots(o, 1, squeeze=False, figsize=(max(6, n * 0.12), 1.8 * o + 0.6))
        for q in range(o):
            colors = ["tab:red" if i in ex.latents else "tab:gray" for i in range(n)]
            axes[q][0].bar(range(n), weights[q].numpy(), color=colors)
            axes[q][0].set_xlim(-0.5, n - 0.5)
            axes[q][0].set_ylabel(f"query {q}" if o > 1 else "weight")
        axes[-1][0].set_xlabel("latent (red: the latents drawn in the attention picture)")
    else:
        fig, ax = plt.subplots(figsize=(8, 4))
        image = ax.imshow(weights.numpy(), aspect="auto", cmap="inferno", interpolation="nearest")
        ax.set_xlabel("latent")
        ax.set_ylabel("output query")
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"{title}\n{re.sub(r'[.]attention$', '', name)} over the latents", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def to_json(ex: Explanation, source: str) -> dict[str, Any]:
    def rounded(t: torch.Tensor):
        return torch.round(t * 1e6).div(1e6).tolist()

    return {
        "input": source, "prediction": ex.prediction, "modality": ex.modality, "index_shape": list(ex.index_shape),
        "latents": ex.latents,
        "cross_attention": [{"module": name, "call": call, "heads": int(maps.shape[0]),
                             "mean_over_heads": rounded(maps.mean(dim=0)[ex.latents]),
                             "per_head": rounded(maps[:, ex.latents])} for name, call, maps in ex.input_maps],
        "decoder_attention": [{"module": name, "call": call, "mean_over_heads": rounded(maps.mean(dim=0)),
                               "per_head": rounded(maps)} for name, call, maps in ex.decoder_maps],
        "positions": None if ex.positions is None or len(ex.index_shape) != 1 else rounded(ex.positions),
    }


def _stem(item: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(item).stem if Path(item).suffix else item).strip("_") or "input"
    base, n = stem, 1
    while stem in used:
        n += 1
        stem = f"{base}-{n}"
    used.add(stem)
    return stem


def _describe(prediction: Any, raw: Mapping[str, Any], names: Sequence[str] | None) -> str:
    """"predicted table (0.93), true table" for classifiers (with the dataset's label names when known)."""
    def name(label):
        return names[label] if names and isinstance(label, int) and 0 <= label < len(names) else label

    if isinstance(prediction, dict) and "label" in prediction:
        text = f"predicted {name(prediction['label'])}"
        if "confidence" in prediction:
            text += f" ({prediction['confidence']:.2f})"
    elif isinstance(prediction, dict) and isinstance(prediction.get("text"), str):
        text = f"filled in: {prediction['text'][:70]!r}"
    else:
        text = f"predicted {str(prediction)[:60]}"
    if isinstance(raw.get("label"), int):
        text += f", true {name(raw['label'])}"
    return text


def run_explain(args, *, load_model, read_input, emit) -> int:
    """The command, given the CLI's shared helpers: load_model(args) (the checked checkpoint), read_input(model,
    args, item) (a file or SPLIT:INDEX) and emit(args, data, text)."""
    latents = None
    if args.latents:
        try:
            latents = [int(x) for x in args.latents.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--latents takes indices separated by commas, e.g. 0,5,9; got {args.latents!r}") from None
    model = load_model(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, used = [], set()
    for item in args.inputs:
        raw = read_input(model, args, item)
        try:
            ex = explain_example(model, raw, latents=latents, top=args.top)
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"{item}: cannot be used as input of this model: {exc}") from None
        stem = _stem(item, used)
        title = f"{item}: {_describe(ex.prediction, raw, model.context.dataset.get('label_names'))}"
        files = [out / f"{stem}_attention.png"]
        draw_input(ex, raw, files[0], title)
        if draw_decoder(ex, out / f"{stem}_decoder.png", title):
            files.append(out / f"{stem}_decoder.png")
        if args.json:
            files.append(out / f"{stem}.json")
            files[-1].write_text(json.dumps(to_json(ex, item)))
        rows.append({"input": item, "prediction": ex.prediction, "latents": ex.latents,
                     "files": [str(f) for f in files]})
    emit(args, rows, "\n".join(f"{r['input']}: prediction {r['prediction']}, latents {r['latents']} -> "
                                + ", ".join(r["files"]) for r in rows))
    return 0
