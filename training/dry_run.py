"""`spar run CONFIG --dry-run`: every stage of an experiment config in seconds, to validate it end to end.

What is real: the config (every key, type, range and cross-check), the prompt source and the pool's size for the
run, the eval benchmarks' data and options, the contamination check, and every stage of every iteration with its
data flow: collection, search, data building, TRL training (DPO and SFT, the run's own stage settings) and scoring.
What is replaced, and said so: generation is the packaged fake backend (`reply` below: SPaR's judge and refine
formats, Self-Rewarding's 5-point scores and Meta-Rewarding's meta-judgments, so each method produces training
data), training runs on a tiny random model built here (no download, seconds) for at most `EPOCHS` epoch, at
most `PROMPTS` prompts per iteration and `EVAL_LIMIT` items per benchmark (per category / subset) are used,
training stages run in this process (`models.train_launcher` is not used), and everything goes to a temporary
folder that is removed afterwards: the experiment's own folder and generation cache are not touched. The real
models are not resolved or loaded.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from evaluators.score_judge import SCORE_JUDGE_TEMPLATE
from harness.core.backends.fake import render, selfplay_reply
from harness.core.progress import Reporter
from harness.core.types import ChatRequest
from training.config import RunConfig
from training.methods.meta_rewarding import META_JUDGE_TEMPLATE
from training.trainers import quiet_progress_bars

#: prompts per iteration, items per benchmark, and the training stages' epochs in a dry run
PROMPTS = 4
EVAL_LIMIT = 2
EPOCHS = 1.0
#: the tiny model's vocabulary: byte-level BPE learnt from the prompt templates and built-in prompts
VOCAB = 1024
#: the fake backend's script of a dry run (module:function)
SCRIPT = "training.dry_run:reply"
_SCORE_HEAD = SCORE_JUDGE_TEMPLATE.split("\n", 1)[0]
_META_HEAD = META_JUDGE_TEMPLATE.split("\n", 1)[0]
_CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
           "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def reply(request: ChatRequest, j: int) -> str:
    """The dry run's scripted model: SPaR's actor/judge/refiner (`selfplay`, with `_p_yes`), plus Self-Rewarding's
    5-point scores and Meta-Rewarding's meta-judgments, all deterministic in the request, its seed and the sample
    index."""
    text = request.messages[-1].content
    h = int(hashlib.sha256(f"{render(request)}/{request.seed}/{j}".encode()).hexdigest()[:8], 16)
    if text.startswith(_SCORE_HEAD):
        return f"The response addresses the question.\nScore: {h % 6}"
    if text.startswith(_META_HEAD):
        winner = "A" if h % 2 else "B"
        return f"Judgment {winner} applies the rubric better.\nWinner: Judgement {winner}"
    return selfplay_reply(request, j, _p_yes)


def _p_yes(marks: int) -> float:
    """The judge's Yes rate: 30% for an actor's answer (so prompts get both verdicts: negatives for SPaR, sampled
    pairs for the ablations), rising with each refinement (so searches pass)."""
    return min(0.3 + 0.2 * marks, 0.95)


def _corpus() -> list[str]:
    """What the tiny tokenizer learns its merges from: the judge, refine and score prompts and the built-in prompts."""
    from evaluators.judging import JUDGE_TEMPLATE, REFINE_INSTRUCTION, REFINE_INSTRUCTION_RFT
    from harness.core.data import read_jsonl
    from training.sources import BUILTIN_PROMPTS

    texts = [JUDGE_TEMPLATE, REFINE_INSTRUCTION, REFINE_INSTRUCTION_RFT, SCORE_JUDGE_TEMPLATE, META_JUDGE_TEMPLATE]
    return texts + [row["prompt"] for row in read_jsonl(BUILTIN_PROMPTS)]


def tiny_tokenizer():
    """A byte-level BPE tokenizer (any text encodes) with `VOCAB` entries learnt from `_corpus`, ChatML special tokens
    and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>")
    tokenizer.chat_template = _CHATML
    return tokenizer


def tiny_model(folder: Path, tokenizer=None, max_positions: int = 16384) -> Path:
    """A tiny random Llama (2 layers, width 32) with `tokenizer` (default `tiny_tokenizer`), saved as a plain
    checkpoint in `folder` (nothing downloaded, about a second). The tests and benchmarks/gpu_serving_check.py build
    theirs here too, with SmolLM2's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer if tokenizer is not None else tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    with quiet_progress_bars():  # its "Writing model shards" bar would break the run's progress lines
        LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def dry_config(cfg: RunConfig, folder: Path, model: Path) -> RunConfig:
    """The config a dry run executes: the fake backend for every role, the tiny model as the starting checkpoint,
    few prompts and eval items, no launcher, and the temporary folder for outputs and the generation cache."""
    m = cfg.models

    def role(spec):
        return spec.replace(name=str(model), backend="fake", script=SCRIPT)

    def short(stage):
        return replace(stage, num_train_epochs=min(stage.num_train_epochs, EPOCHS))

    return replace(cfg, output_dir=str(folder / "experiment"), cache=str(folder / "generations.sqlite"),
                   prompts_per_iteration=min(cfg.prompts_per_iteration, PROMPTS),
                   models=replace(m, actor=role(m.actor), refiner=role(m.refiner), train_launcher=""),
                   init=replace(cfg.init, limit=min(cfg.init.limit or PROMPTS, PROMPTS), sft=short(cfg.init.sft)),
                   dpo=short(cfg.dpo), rft=short(cfg.rft),
                   eval=replace(cfg.eval, limit=min(cfg.eval.limit or EVAL_LIMIT, EVAL_LIMIT)))


@dataclass
class DryRun:
    """What a dry run did: per iteration, each stage's seconds; the training stages that had no data from the fake
    model to train on, with the reason; the whole time; what was replaced."""

    stages: dict[int, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    replaced: str = ""

    def lines(self) -> list[str]:
        out = [f"iter {t}: " + ", ".join(f"{stage} {s:.1f} s" for stage, s in stages.items())
               for t, stages in self.stages.items()]
        out.append(f"dry run: every stage ran in {self.seconds:.1f} s ({self.replaced}); the config is valid end to "
                   "end")
        if self.skipped:
            out.append("dry run: not exercised with this fake data: " +
                       "; ".join(f"{where} ({why})" for where, why in self.skipped.items()))
        return out


def dry_run(cfg: RunConfig, reporter: Reporter,
            evaluator: Callable[[RunConfig, Reporter], Callable] | None = None) -> DryRun:
    """Run every stage of `cfg` as described in the module docstring; `evaluator(cfg, reporter)` builds the eval
    stages' scorer (the harness's suite). The temporary folder is removed at the end, whatever happens."""
    from training.loop import run_experiment

    started = time.perf_counter()
    replaced = (f"fake generation ({SCRIPT}), a tiny random model trained for at most {EPOCHS:g} epoch, at most "
                f"{PROMPTS} prompts per iteration and {EVAL_LIMIT} eval items per benchmark, no launcher; nothing "
                "kept")
    reporter.note(f"dry run of {cfg.experiment}: {replaced}; {cfg.out} and the generation cache are not touched")
    with tempfile.TemporaryDirectory(prefix="spar-dry-run-") as tmp:
        folder = Path(tmp)
        dry = dry_config(cfg, folder, tiny_model(folder / "tiny-model"))
        records = run_experiment(dry, reporter, evaluate=evaluator(dry, reporter) if evaluator else None)
    stages = {r["iteration"]: {k: float(v.get("seconds") or 0.0) for k, v in r["stages"].items()} for r in records}
    skipped = {f"iter {r['iteration']} {k}": str(v["skipped"]) for r in records for k, v in r["stages"].items()
               if k.startswith("train_") and v.get("skipped") and "ablation" not in str(v["skipped"])}
    return DryRun(stages, skipped, round(time.perf_counter() - started, 1), replaced)
