"""perceiver-text: tokenizer (HF's ids), span masking, the byte preprocessor, the tied MLM decoder and the task."""

from __future__ import annotations

import pytest
import torch
from perceiver_text import tokenizer
from perceiver_text.masking import IGNORE, mask_spans

from perceiver_core import BuildContext, build_from_spec, collate, from_checkpoint, load_registry, save_checkpoint

TINY = """
[pipelines.tiny-mlm]
task = { use = "text.mlm" }
data = { use = "none" }
preprocessor = { use = "text.bytes", max_length = 24, channels = 16, mask_probability = 0.25, span_length = 2 }
position = "none"
encoder = { use = "perceiver", num_latents = 4, latent_channels = 16, num_blocks = 1, self_attends_per_block = 1, cross_attend_heads = 2, cross_attend_qk_channels = 8, self_attend_heads = 2 }
decoder = { use = "text.mlm_decoder", num_heads = 2, qk_channels = 8 }
"""


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(TINY)
    torch.manual_seed(0)
    return build_from_spec(load_registry([path], include_default=False).resolve("tiny-mlm"), BuildContext())


def test_tokenizer_ids_are_hf_perceiver_tokenizer_ids():
    text = "Héllo [MASK] wörld!"
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.CLS and ids[-1] == tokenizer.SEP and tokenizer.MASK in ids
    assert tokenizer.decode(ids) == "Héllo  wörld!"
    assert tokenizer.decode(ids, skip_special=False) == "[CLS]Héllo [MASK] wörld![SEP]"
    transformers = pytest.importorskip("transformers", reason="compares with HF's PerceiverTokenizer")
    assert transformers.PerceiverTokenizer()(text)["input_ids"] == ids


def test_span_masking_hides_bytes_only_and_labels_them():
    ids = torch.tensor(tokenizer.encode("abcdefghijklmnopqrstuvwxyz" * 2))
    masked, labels = mask_spans(ids, 0.3, 3, torch.Generator().manual_seed(0))
    hidden = masked == tokenizer.MASK
    assert 0.2 * 52 <= hidden.sum() <= 0.4 * 52
    assert masked[0] == tokenizer.CLS and masked[-1] == tokenizer.SEP  # specials are never masked
    assert torch.equal(labels[hidden], ids[hidden]) and bool((labels[~hidden] == IGNORE).all())
    again, _ = mask_spans(ids, 0.3, 3, torch.Generator().manual_seed(0))
    assert torch.equal(again, masked)  # seeded: deterministic


def test_prepare_pads_masks_and_truncates(model):
    pre = model.preprocessor
    out = pre.prepare({"text": "short text"})
    n = len("short text") + 2
    assert out["input_ids"].shape == (24,) and int(out["attention_mask"].sum()) == n
    assert bool((out["input_ids"][n:] == tokenizer.PAD).all()) and bool((out["labels"][n:] == IGNORE).all())
    assert (out["input_ids"] == tokenizer.MASK).sum() == (out["labels"] != IGNORE).sum() > 0
    assert torch.equal(pre.prepare({"text": "short text"})["input_ids"], out["input_ids"])  # eval: fixed mask
    long = pre.prepare({"text": "x" * 100})
    assert long["input_ids"][-1] == tokenizer.SEP and bool(long["attention_mask"].all())
    explicit = pre.prepare({"text": "ab[MASK]d"})  # predict: masks as written, no random ones
    assert (explicit["input_ids"] == tokenizer.MASK).sum() == 1


def test_loss_counts_masked_bytes_only(model):
    batch = collate([model.prepare({"text": t}) for t in ("the quick brown fox", "jumps over the lazy dog")])
    outputs = model(batch).detach()
    assert outputs.shape == (2, 24, tokenizer.VOCAB_SIZE)
    unmasked = batch["labels"] == IGNORE
    changed = outputs.clone()
    changed[:, :24][unmasked] += torch.randn_like(changed[:, :24][unmasked])
    assert torch.allclose(model.task.loss(outputs, batch), model.task.loss(changed, batch))
    changed[:, :24][~unmasked] += 1.0 * torch.randn_like(changed[:, :24][~unmasked])
    assert not torch.allclose(model.task.loss(outputs, batch), model.task.loss(changed, batch))


def test_logits_are_tied_to_the_input_embedding(model):
    names = [n for n, _ in model.named_parameters()]
    assert "preprocessor.embeddings.weight" in names and not any("decoder" in n and "embed" in n for n in names)
    batch = collate([model.prepare({"text": "tied weights"})])
    model.zero_grad()
    model.loss(batch)[0].backward()
    assert model.preprocessor.embeddings.weight.grad.abs().sum() > 0
    before = model(batch).detach()
    with torch.no_grad():
        model.preprocessor.embeddings.weight[tokenizer.OFFSET + ord("z")] += 5.0
    assert not torch.allclose(model(batch)[..., tokenizer.OFFSET + ord("z")], before[..., tokenizer.OFFSET + ord("z")])


def test_padding_mask_reaches_the_encoder(model):
    a = collate([model.prepare({"text": "abc[MASK]e"})])
    b = {k: v.clone() for k, v in a.items()}
    b["input_ids"][0, 10:] = 7 + torch.arange(14)  # garbage in the padding only
    with torch.no_grad():
        assert torch.allclose(model(a), model(b), atol=1e-6)


def test_checkpoint_round_trip_and_predict(model, tmp_path):
    save_checkpoint(tmp_path / "m.safetensors", model)
    loaded = from_checkpoint(tmp_path / "m.safetensors")
    batch = collate([loaded.prepare({"text": "hello w[MASK]rld"})])
    with torch.no_grad():
        assert torch.allclose(loaded(batch), model.eval()(batch))
    (pred,) = loaded.predict(batch)
    assert pred["filled"] == 1 and pred["text"].startswith("hello w") and pred["text"].endswith("rld")
    assert len(pred["text"].encode("utf-8")) == len("hello world")


def test_docstring_corpus_is_offline_fixed_and_split():
    from perceiver_text.configs import DocstringsConfig
    from perceiver_text.corpus import DocstringCorpus

    config = DocstringsConfig(modules=("textwrap", "string", "json"))
    train, test = (DocstringCorpus(config).examples(s) for s in ("train", "test"))
    assert len(train) > 20 and len(test) >= 1
    texts = [e["text"] for e in train]
    assert not set(texts) & {e["text"] for e in test}
    assert all(config.min_chars <= len(t) <= config.max_chars for t in texts)
    assert texts == [e["text"] for e in DocstringCorpus(config).examples("train")]


def test_demo_options_context_conv_and_input_queries(tmp_path):
    """text-mlm-tiny's variant: a byte-context convolution and flow-style queries (input + Fourier position)."""
    from perceiver_text.configs import BytesConfig
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="odd"):
        BytesConfig(context_kernel=4)
    text = TINY.replace('span_length = 2 }', 'span_length = 2, learned_positions = false, context_kernel = 3 }') \
        .replace('position = "none"', 'position = { use = "fourier", num_bands = 4, max_resolution = [24] }') \
        .replace('qk_channels = 8 }', 'qk_channels = 8, query = "fourier", num_bands = 4, concat_input = true, '
                                      'use_query_residual = true }')
    path = tmp_path / "r.toml"
    path.write_text(text)
    model = build_from_spec(load_registry([path], include_default=False).resolve("tiny-mlm"), BuildContext())
    names = {n for n, _ in model.named_parameters()}
    assert {"preprocessor.context_conv.weight", "decoder.head.weight"} <= names
    assert "preprocessor.position_embeddings.weight" not in names
    batch = collate([model.prepare({"text": "abc[MASK]efg"})])
    assert model(batch).shape == (1, 24, tokenizer.VOCAB_SIZE)
    # the query of the masked position sees its neighbours through the convolution: changing one changes it
    other = {k: v.clone() for k, v in batch.items()}
    other["input_ids"][0, 3] = tokenizer.OFFSET + ord("z")
    with torch.no_grad():
        assert not torch.allclose(model(batch)[0, 4], model(other)[0, 4])
