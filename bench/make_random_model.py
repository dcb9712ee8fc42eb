"""Write a random-weight model folder of a real model's shape, for benchmarks without downloads.

    python bench/make_random_model.py --shape mistral-7b --out /tmp/m7b --device cuda

The shape is the issue's Mistral-7B (4096 hidden, 32 layers, 32 heads, 8 KV heads, 14336
intermediate, vocabulary 32768) in bf16; the tokenizer is the demo model's, padded to the
model's vocabulary so that every id decodes. Speed does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = {
    "mistral-7b": dict(
        hidden_size=4096,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=14336,
        vocab_size=32768,
        max_position_embeddings=32768,
    ),
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=32768,
        max_position_embeddings=2048,
    ),
}


def padded_tokenizer(vocab_size: int, out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    from inference.demo_model import CHAT_TEMPLATE, _vocab

    base = _vocab()
    vocab = {t: i for i, t in enumerate(base + [f"<w{i}>" for i in range(vocab_size - len(base))])}
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
    fast.save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    out = args.out or Path(tempfile.mkdtemp(prefix=f"iw-{args.shape}-"))
    cfg = MistralConfig(
        **SHAPES[args.shape],
        sliding_window=None,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    with torch.device(args.device):
        model = MistralForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    padded_tokenizer(cfg.vocab_size, out)
    print(out)


if __name__ == "__main__":
    main()
