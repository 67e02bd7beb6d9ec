"""The transformers backend on a tiny random model built on the fly."""

from __future__ import annotations

import pytest

from harness.core.models import resolve_model
from harness.core.types import ChatRequest, Message, SamplingParams


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from harness.core.backends import make_backend

    return make_backend("hf", model=resolve_model(str(tiny_model_dir)), batch_size=4)


def test_identity_is_a_weight_hash(backend, tiny_model_dir):
    assert backend.identity.startswith("sha256:") and backend.identity.endswith("|dtype=float32")
    assert resolve_model(str(tiny_model_dir)).identity == resolve_model(str(tiny_model_dir)).identity


def test_chat_template_is_applied(backend):
    text = backend.render(ChatRequest((Message("system", "S"), Message("user", "hello"))))
    assert "<|im_start|>user\nhello<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_greedy_is_repeatable_and_bounded(backend):
    reqs = [ChatRequest.user(p, sampling=SamplingParams(max_new_tokens=12)) for p in ("a", "bb bb", "c c c c c")]
    first = backend.generate(reqs)
    assert backend.generate(reqs) == first
    for (comp,) in first:
        assert comp.completion_tokens <= 12 and comp.prompt_tokens > 0
        assert comp.finish_reason in {"stop", "length"}


def test_batched_greedy_equals_one_at_a_time(backend):
    reqs = [ChatRequest.user(p, sampling=SamplingParams(max_new_tokens=8)) for p in ("short", "a much longer prompt here")]
    batched = backend.generate(reqs)
    single = [backend.generate([r])[0] for r in reqs]
    assert [c[0].text for c in batched] == [c[0].text for c in single]


def test_sampling_n_and_seed(backend):
    req = ChatRequest.user("tell me", sampling=SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=10), seed=5,
                           n=3)
    (a,) = backend.generate([req])
    (b,) = backend.generate([req])
    assert len(a) == 3 and a == b
    assert len({c.text for c in a}) > 1  # a random tiny model samples different texts
    (c,) = backend.generate([ChatRequest.user("tell me", sampling=req.sampling, seed=6, n=3)])
    assert c != a


def test_stop_strings_truncate(backend):
    (out,) = backend.generate([ChatRequest.user("x", sampling=SamplingParams(max_new_tokens=20))])
    text = out[0].text
    if len(text) < 4:
        pytest.skip("tiny model produced too little text to cut")
    stop = text[2:4]
    (cut,) = backend.generate([ChatRequest.user("x", sampling=SamplingParams(max_new_tokens=20, stop=(stop,)))])
    assert stop not in cut[0].text and text.startswith(cut[0].text)


def test_shared_prefill_gives_the_same_samples_as_transformers_own_path(tiny_model_dir):
    """n samples per prompt: encoding each prompt once (cache repeated n times) draws exactly what
    num_return_sequences=n draws, with left padding across prompts of different lengths."""
    from harness.core.backends.hf import HFBackend

    model = resolve_model(str(tiny_model_dir))
    shared, plain = HFBackend(model, batch_size=4), HFBackend(model, batch_size=4, share_prefill=False)
    requests = [ChatRequest((Message("user", "word " * (3 * i + 1)),), SamplingParams(0.8, 0.95, 12), seed=i, n=3)
                for i in range(4)]
    a, b = shared.generate(requests), plain.generate(requests)
    assert shared.share_prefill  # the shared path was taken, not the fallback
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]
    assert [[c.completion_tokens for c in row] for row in a] == [[c.completion_tokens for c in row] for row in b]
    assert len({c.text for row in a for c in row}) > 4  # real sampling, not one repeated answer


def test_requests_sharing_a_prompt_are_encoded_once_with_the_same_samples(tiny_model_dir):
    from harness.core.backends.hf import HFBackend

    model = resolve_model(str(tiny_model_dir))
    shared, plain = HFBackend(model, batch_size=6), HFBackend(model, batch_size=6, share_prefill=False)
    prompts = ["alpha beta", "gamma " * 5, "alpha beta", "delta", "gamma " * 5, "alpha beta"]
    requests = [ChatRequest((Message("user", p),), SamplingParams(0.8, 1.0, 10), seed=i) for i, p in enumerate(prompts)]
    a, b = shared.generate(requests), plain.generate(requests)
    assert shared.share_prefill
    assert [row[0].text for row in a] == [row[0].text for row in b]
