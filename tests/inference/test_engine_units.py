from __future__ import annotations

import shutil


from inference.demo_model import ensure_demo_model
from inference.detokenizer import StopMatcher
from inference.model_loader import content_digest


def test_stop_matcher_holds_back_possible_prefixes():
    m = StopMatcher(["STOP"])
    assert m.feed("abcS") == ("abc", False)
    assert m.feed("T") == ("", False)
    assert m.feed("x") == ("STx", False)
    assert m.feed("yST") == ("y", False)
    assert m.feed("OPzz") == ("", True)


def test_stop_matcher_every_split_gives_the_same_text():
    text, stop = "hello wor|d and more", "d and"
    want = text[: text.find(stop)]
    for cut in range(len(text) + 1):
        m = StopMatcher([stop])
        out1, hit1 = m.feed(text[:cut])
        out2, hit2 = m.feed(text[cut:]) if not hit1 else ("", True)
        assert out1 + out2 == want and (hit1 or hit2)


def test_stop_matcher_flush_releases_held_text():
    m = StopMatcher(["</end>"])
    assert m.feed("abc</e") == ("abc", False)
    assert m.flush() == "</e"


def test_digest_is_content_derived(tmp_path):
    src = ensure_demo_model(tmp_path / "a")
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    (copy / "inferwatch-digest.json").unlink(missing_ok=True)
    assert content_digest(src) == content_digest(copy)
    cfg = copy / "config.json"
    cfg.write_text(cfg.read_text().replace('"rms_norm_eps"', '"rms_norm_eps" ', 1))
    assert content_digest(copy) != content_digest(src)


def test_demo_model_is_deterministic(tmp_path):
    a = ensure_demo_model(tmp_path / "a")
    b = ensure_demo_model(tmp_path / "b")
    assert content_digest(a) == content_digest(b)


def test_device_map_auto_loads_through_accelerate(tmp_path):
    from inference.model_loader import load_model

    loaded = load_model(ensure_demo_model(tmp_path), device_map="auto")
    assert str(loaded.device) == "cpu"  # no GPU here: accelerate places every layer on the CPU
    assert loaded.version.alias == "inferwatch-demo-mistral"
