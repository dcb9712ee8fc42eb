"""The built-in demo model: a small Mistral-architecture model made on first use.

It is created deterministically (fixed seed, fixed vocabulary), saved as an ordinary Hugging
Face folder and then loaded through the same code path as real weights, so everything that
works for the demo works for a downloaded model. Its weights are random: it speaks noise.
"""

from __future__ import annotations

import json
import os
import shutil
import string
from pathlib import Path

DEMO_NAME = "inferwatch-demo-mistral"
SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
# Mistral's chat format: <s>[INST] user [/INST] answer</s>; system text is prepended to the first turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set sys = namespace(text='') %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{% set sys.text = sys.text + m['content'] + '\n\n' %}{% endif %}{% endfor %}"
    "{% set first = namespace(done=false) %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}[INST] {% if not first.done %}{{ sys.text }}{% set first.done = true %}{% endif %}"
    "{{ m['content'] }} [/INST]"
    "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)


def _vocab() -> list[str]:
    # Printable ASCII characters, one token each: every generated token decodes to visible text.
    return SPECIALS + [c for c in string.printable if c not in "\x0b\x0c\r"]


def _build_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_vocab())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["[INST]", "[/INST]"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)


def ensure_demo_model(data_dir: Path) -> Path:
    """Return the demo model folder under `data_dir`, creating it on first use."""
    path = Path(data_dir) / "models" / DEMO_NAME
    if (path / "config.json").exists() and any(path.glob("*.safetensors")):
        return path
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    # a folder per process: co-located workers started together build it side by side
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    _build_tokenizer(tmp)
    vocab_size = len(_vocab())
    config = MistralConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        sliding_window=None,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(20261127)
    # transformers declares `to` with @wraps(nn.Module.to), so its stubs take the dtype for `self`
    model = MistralForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]
    with torch.no_grad():
        # Random init gives near-uniform logits; a sharper output layer makes sampling and
        # greedy decoding differ visibly, which is what the demo and the tests need.
        model.lm_head.weight.mul_(8.0)
        model.lm_head.weight[2].mul_(0.1)  # keep EOS rare so streams run to max_tokens
    model.save_pretrained(tmp, safe_serialization=True)
    (tmp / "inferwatch-demo.json").write_text(json.dumps({"demo": True, "note": "random weights"}))
    try:
        tmp.rename(path)
    except OSError:  # another worker finished first: its model is the same (fixed seed)
        if not (path / "config.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def is_demo(path: Path) -> bool:
    return (Path(path) / "inferwatch-demo.json").exists()
