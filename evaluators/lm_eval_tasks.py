"""lm-eval tasks as spar benchmarks (SPaR Table 7, general capabilities): `--benchmarks lm-eval:gsm8k,lm-eval:mmlu`.

Each `lm-eval:<task>` benchmark runs one lm-eval task, group or tag through lm-eval's own API
(`lm_eval.simple_evaluate` with a `TaskManager`; nothing of a task is re-implemented here) on the run's model:

- `--backend hf`: lm-eval's `HFLM` wraps the weights spar's hf backend has already loaded (one copy in memory; same
  checkpoint, dtype and device). With `model_args` set, lm-eval loads its own copy instead:
  `HFLM(pretrained=<resolved folder>, dtype=..., device=..., batch_size=..., <model_args>)`.
- `--backend openai`: lm-eval's `local-chat-completions` (`api: chat`, the default; generate_until tasks only, the
  chat template is the server's, so `apply_chat_template` is on) or `local-completions` (`api: completions`;
  loglikelihood tasks too, with a Hugging Face tokenizer: `tokenizer`, default the model name) at the first of the
  spec's base URLs, with the spec's model name, concurrency, retries and timeout; the API key comes from the spec's
  `api_key_env` and is never recorded.
- `--backend fake` (and `module:Factory` backends): spar's own backend answers generate_until requests (the prompt as
  one user message, or lm-eval's chat turns with `apply_chat_template`); loglikelihood tasks are refused.
- `--backend vllm` is refused (a second engine would not fit beside spar's): serve the model (`vllm serve`) and use
  `--backend openai`, or use `--backend hf`.

Options (`--bench lm-eval:<task>.KEY=VALUE`): num_fewshot, limit, batch_size, apply_chat_template, gen_kwargs,
model_args, include_path (a folder of local task YAMLs; `--data lm-eval:<task>=FOLDER` says the same) ... Spar's
`--limit` is lm-eval's `limit` (per leaf task) unless the benchmark's own `limit` is set; spar's `--system-prompt`
is lm-eval's `system_instruction`. Spar's decoding flags (temperature, max-new-tokens) do not apply: each task's own
`generation_kwargs` do, as under lm-eval (`gen_kwargs` overrides them).

Output: `<run>/lm-eval:<task>/metrics.json` holds every metric lm-eval reports for the task under lm-eval's names
(`exact_match,strict-match`, `exact_match_stderr,strict-match`, `acc,none`, ...), plus `per_task` (each leaf task's
row, for groups and tags), `n`, `n_total`, `num_fewshot`, `versions` and `higher_is_better`;
`<run>/lm-eval:<task>/samples.jsonl` holds lm-eval's logged samples (one per document and filter, with `task`). The
record names lm-eval's version, each task config's sha256 and version, and the model type and arguments.

Offline (HF_DATASETS_OFFLINE=1), a task whose dataset is not in the local datasets cache is a one-line error before
any model loads. lm-eval's response cache (SQLite, per model identity, under spar's cache dir) makes a killed run
resume (`cache: false` turns it off).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal, Sequence

from evaluators.base import Evaluator, GenerationConfig, LoadedData, ScoreResult
from harness.core.errors import SparError
from harness.core.options import NonNegativeInt, PositiveFloat, PositiveInt, option, options, to_dict
from harness.core.types import ChatRequest

PREFIX = "lm-eval"
#: metrics whose values are fractions (shown in % like spar's own); others are shown as lm-eval reports them
FRACTIONS = {"acc", "acc_norm", "acc_mutual_info", "exact_match", "em", "f1", "mc1", "mc2", "pass@1", "pass_at_1",
             "prompt_level_strict_acc", "prompt_level_loose_acc", "inst_level_strict_acc", "inst_level_loose_acc"}


@options
class LMEvalOptions:
    """How one lm-eval task runs (lm-eval's own settings; unset means lm-eval's default)."""

    num_fewshot: NonNegativeInt | None = option(None, "few-shot examples (lm-eval's --num_fewshot; default: the "
                                                      "task's own)")
    limit: PositiveFloat | None = option(None, "documents per leaf task (lm-eval's --limit: a count, or a fraction "
                                               "< 1); default: spar's --limit")
    batch_size: PositiveInt | Literal["auto"] | None = option(None, "lm-eval batch size (hf: a number or auto); "
                                                                    "default: the model spec's batch_size")
    apply_chat_template: bool | None = option(None, "format prompts with the model's chat template (lm-eval's "
                                                    "--apply_chat_template); default off, on for the openai chat API")
    fewshot_as_multiturn: bool | None = option(None, "few-shot examples as chat turns (with apply_chat_template; "
                                                     "default: lm-eval's)")
    gen_kwargs: str = option("", "lm-eval's --gen_kwargs over the task's generation_kwargs, e.g. "
                                 "'max_gen_toks=512,temperature=0'")
    model_args: str = option("", "extra lm-eval model arguments (k=v,k=v) over spar's; with the hf backend lm-eval "
                                 "then loads its own copy of the weights")
    api: Literal["chat", "completions"] = option("chat", "openai backend: local-chat-completions (generation only) "
                                                         "or local-completions (also loglikelihood tasks)")
    tokenizer: str = option("", "openai completions API: the Hugging Face tokenizer (default: the model name)")
    include_path: str = option("", "a folder of extra lm-eval task YAMLs (local tasks); --data names one too")
    bootstrap_iters: NonNegativeInt = option(100000, "lm-eval's bootstrap iterations for stderrs of non-mean "
                                                     "metrics (0: none)")
    cache: bool = option(True, "lm-eval's response cache under spar's cache dir (per model identity): a killed run "
                               "resumes")
    confirm_run_unsafe_code: bool = option(False, "allow tasks that execute model-written code (lm-eval's "
                                                  "--confirm_run_unsafe_code, e.g. humaneval)")


# ------------------------------------------------------------------------------------------------------ tasks
@functools.lru_cache(maxsize=8)
def _task_manager(include: tuple[str, ...], defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include) or None, include_defaults=defaults)


def task_manager_for(task: str, include: Sequence[str]):
    """lm-eval's TaskManager that knows `task`: the include folders alone when they define it (no 12 s scan of the
    built-in tasks), else the built-in tasks plus the include folders. None when neither knows it."""
    include = tuple(include)
    if include:
        tm = _task_manager(include, False)
        if task in tm.all_tasks:
            return tm
    tm = _task_manager(include, True)
    return tm if task in tm.all_tasks else None


def _offline() -> bool:
    return any(os.environ.get(v, "0").lower() in {"1", "true", "yes", "on"}
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = (lines[0] if lines else type(exc).__name__).strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "'\"":  # KeyError's repr quotes
        line = line[1:-1]
    return line


def _roots(loaded: dict) -> list:
    """The loaded tasks and groups that no loaded group contains (what was asked for: a task, a group, a tag's
    tasks)."""
    children = {c for kids in loaded.get("group_map", {}).values() for c in kids}
    groups = [g for name, g in loaded["groups"].items() if name not in children]
    tasks = [t for name, t in loaded["tasks"].items() if name not in children]
    return groups + tasks


def _config_dict(task) -> dict:
    try:
        return task.config.to_dict()
    except Exception:  # noqa: BLE001 - a config lm-eval cannot serialise is still recorded by name
        return {"task": getattr(task, "task_name", str(task))}


def _fingerprints(task) -> dict:
    """The datasets library's fingerprint of each loaded split (changes with the data)."""
    try:
        return {split: getattr(ds, "_fingerprint", None) for split, ds in (task.dataset or {}).items()}
    except Exception:  # noqa: BLE001 - a Python task with its own kind of dataset
        return {}


def _local_files(cfg: dict) -> dict:
    """sha256 of the local data files a task config names (`dataset_kwargs.data_files`)."""
    from harness.core.data import sha256_of

    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if isinstance(files, dict):
        paths = [p for v in files.values() for p in ([v] if isinstance(v, str) else v or [])]
    else:
        paths = [files] if isinstance(files, str) else list(files or [])
    return {str(p): sha256_of(Path(p)) for p in paths if isinstance(p, str) and Path(p).is_file()}


def _sha256_json(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def lm_eval_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------------ spar backend as LM
def _spar_lm(backend, name: str):
    """An lm-eval `LM` answering generate_until requests with a spar backend (fake and custom backends)."""
    from lm_eval.api.model import LM

    class SparBackendLM(LM):
        def __init__(self) -> None:
            super().__init__()
            self.backend = backend

        @property
        def tokenizer_name(self) -> str:
            return f"spar-{getattr(backend, 'name', 'backend')}"

        def apply_chat_template(self, chat_history, add_generation_prompt=True) -> str:
            return json.dumps({"spar_chat": list(chat_history)})

        def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
            from harness.core.types import Message, SamplingParams

            chats = []
            for req in requests:
                context, kwargs = req.args[0], dict(req.args[1] or {})
                try:
                    turns = json.loads(context)["spar_chat"]
                except (ValueError, TypeError, KeyError):
                    turns = [{"role": "user", "content": context}]
                until = kwargs.get("until") or ()
                until = (until,) if isinstance(until, str) else tuple(until)
                greedy = not kwargs.get("do_sample", False)
                sampling = SamplingParams(temperature=0.0 if greedy else float(kwargs.get("temperature", 1.0)),
                                          max_new_tokens=int(kwargs.get("max_gen_toks", 256)), stop=until)
                chats.append(ChatRequest(tuple(Message(t["role"], t["content"]) for t in turns), sampling))
            texts = [comps[0].text for comps in backend.generate(chats)]
            for req, text in zip(requests, texts):
                self.cache_hook.add_partial("generate_until", req.args, text)
            return texts

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise SparError(f"{name}: a loglikelihood (multiple-choice) task needs token log-probabilities, which "
                            f"the {getattr(backend, 'name', 'given')} backend does not give; use --backend hf or "
                            f"--backend openai with --bench {name}.api=completions")

        loglikelihood_rolling = loglikelihood

    return SparBackendLM()


# ----------------------------------------------------------------------------------------------- evaluator
class LMEvalTaskEvaluator(Evaluator):
    """One lm-eval task (or group, or tag) run by lm-eval itself; `specialize(task)` gives the class of
    `lm-eval:<task>`."""

    name = PREFIX
    task = ""
    Options = LMEvalOptions

    @classmethod
    @functools.lru_cache(maxsize=None)
    def specialize(cls, task: str) -> type["LMEvalTaskEvaluator"]:
        task = task.strip()
        if not task:
            raise SparError(f"{PREFIX}:TASK: name an lm-eval task after '{PREFIX}:', e.g. {PREFIX}:gsm8k")
        if "," in task or "/" in task or os.sep in task:
            raise SparError(f"{PREFIX}:{task}: one lm-eval task name per benchmark (several: "
                            f"--benchmarks {PREFIX}:a,{PREFIX}:b; local tasks: --bench {PREFIX}:NAME.include_path)")
        return type(f"LMEvalTask_{task}", (cls,), {"name": f"{PREFIX}:{task}", "task": task,
                                                   "__module__": cls.__module__})

    def __init__(self, options: Any = None, judge: Any = None) -> None:
        super().__init__(options, judge)
        self._ran: dict = {}
        self._tm = None  # the TaskManager that loaded the task

    # ---------------------------------------------------------------------------------------------- load
    def load(self, source: str | None, limit: int | None = None) -> LoadedData:
        """Find the task and load its documents (lm-eval's dataset loading), before any model loads."""
        if not self.task:
            raise SparError(f"{PREFIX}: name a task, e.g. --benchmarks {PREFIX}:gsm8k")
        include = []
        for path in (source, self.options.include_path):
            if path:
                if not Path(path).is_dir():
                    raise SparError(f"{self.name}: include path {path}: no such folder (a folder of lm-eval task "
                                    f"YAMLs)")
                include.append(str(Path(path).resolve()))
        self._logging_quiet()
        try:
            tm = task_manager_for(self.task, include)
        except ImportError as exc:
            raise SparError(f"{self.name}: lm-eval is not installed ({exc}); pip install lm-eval") from None
        if tm is None:
            known = _task_manager(tuple(include), True).all_tasks
            close = difflib.get_close_matches(self.task, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            where = f" or in {', '.join(include)}" if include else ""
            raise SparError(f"{self.name}: no lm-eval task, group or tag {self.task!r} in lm-eval "
                            f"{lm_eval_version()}{where}{hint} (`lm-eval ls tasks` lists them)")
        try:
            try:
                loaded = tm.load([self.task])
            except OSError:  # the data, not the index: reported below
                raise
            except Exception:  # noqa: BLE001 - e.g. a local group of built-in tasks, which the include folders
                full = _task_manager(tuple(include), True)  # alone do not know: retried with the built-in tasks
                if tm is full:
                    raise
                tm, loaded = full, full.load([self.task])
        except FileNotFoundError as exc:
            if "Unable to find" not in str(exc):
                raise SparError(f"{self.name}: cannot load the dataset of lm-eval task {self.task!r}: "
                                f"{_first_line(exc)}") from None
            raise SparError(f"{self.name}: a data file of lm-eval task {self.task!r} is missing: {_first_line(exc)} "
                            f"(lm-eval reads relative data_files from the working directory)") from None
        except (ConnectionError, OSError) as exc:
            if _offline():
                raise SparError(f"{self.name}: the dataset of lm-eval task {self.task!r} is not available offline "
                                f"(offline mode is on and it is not in the local datasets cache): "
                                f"{_first_line(exc)}") from None
            raise SparError(f"{self.name}: cannot load the dataset of lm-eval task {self.task!r}: "
                            f"{_first_line(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - a bad task config, a missing optional dependency of the task
            raise SparError(f"{self.name}: lm-eval cannot load task {self.task!r}: {type(exc).__name__}: "
                            f"{_first_line(exc)}") from None
        effective = self.options.limit if self.options.limit is not None else limit
        if effective is not None and float(effective).is_integer():
            effective = int(effective)
        tasks = {}
        for name, task in loaded["tasks"].items():
            cfg = _config_dict(task)
            try:
                docs = len(task.eval_docs)
            except Exception:  # noqa: BLE001 - counted where lm-eval can count them
                docs = None
            tasks[name] = {"version": (cfg.get("metadata") or {}).get("version"),
                           "loaded_config_sha256": _sha256_json(cfg),
                           "config_source": (cfg.get("metadata") or {}).get("config_source"),
                           "dataset_path": cfg.get("dataset_path"), "dataset_name": cfg.get("dataset_name"),
                           "dataset_kwargs": _json_safe(cfg.get("dataset_kwargs")),
                           "dataset_fingerprints": _fingerprints(task), "local_files": _local_files(cfg),
                           "output_type": cfg.get("output_type"), "docs": docs}
        source_info = {"lm_eval_task": self.task, "lm_eval_version": lm_eval_version(), "include_path": include,
                       "limit": effective, "groups": sorted(loaded["groups"]), "tasks": tasks}
        self._tm = tm
        return LoadedData(items=_roots(loaded), source=source_info)

    # ------------------------------------------------------------------------------------------------ run
    def run(self, data: LoadedData, spec: Any, backend: Any, config: GenerationConfig) -> ScoreResult:
        """Run the loaded task through `lm_eval.simple_evaluate` on the run's model."""
        import lm_eval

        o = self.options
        lm, model_info = self._model(spec, backend)
        chat = o.apply_chat_template
        if model_info["model"] == "local-chat-completions":
            if chat is False:
                raise SparError(f"{self.name}: the openai chat API needs apply_chat_template (or --bench "
                                f"{self.name}.api=completions)")
            chat = True
        kwargs: dict[str, Any] = dict(limit=data.source.get("limit"), num_fewshot=o.num_fewshot,
                                      log_samples=True, bootstrap_iters=o.bootstrap_iters,
                                      apply_chat_template=bool(chat), gen_kwargs=o.gen_kwargs or None,
                                      system_instruction=config.system_prompt or None,
                                      confirm_run_unsafe_code=o.confirm_run_unsafe_code)
        if o.fewshot_as_multiturn is not None:
            kwargs["fewshot_as_multiturn"] = o.fewshot_as_multiturn
        cache = self._cache_path(model_info, backend) if o.cache else None
        kwargs["use_cache"] = cache
        tm = self._tm or task_manager_for(self.task, data.source.get("include_path", []))
        self._logging_quiet()
        try:
            results = lm_eval.simple_evaluate(model=lm, tasks=list(data.items), task_manager=tm, **kwargs)
        except SparError:
            raise
        except NotImplementedError as exc:  # e.g. loglikelihood through a chat API
            raise SparError(f"{self.name}: {model_info['model']} cannot run this task: "
                            f"{_first_line(exc) or 'not supported'}") from None
        except (ConnectionError, TimeoutError) as exc:
            raise SparError(f"{self.name}: {model_info['model']}: {type(exc).__name__}: {_first_line(exc)}") \
                from None
        if results is None:
            raise SparError(f"{self.name}: lm-eval returned no results (not rank 0)")
        self._ran = {"model": model_info, "cache": cache, "apply_chat_template": bool(chat),
                     "fewshot_as_multiturn": kwargs.get("fewshot_as_multiturn", "lm-eval default"),
                     "gen_kwargs": o.gen_kwargs or None, "system_instruction": kwargs["system_instruction"],
                     "limit": kwargs["limit"], "bootstrap_iters": o.bootstrap_iters,
                     "seeds": {k: (results.get("config") or {}).get(k)
                               for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")},
                     "task_configs": {name: {"version": results.get("versions", {}).get(name),
                                             "config_sha256": _sha256_json(cfg),
                                             "config_source": (cfg.get("metadata") or {}).get("config_source")}
                                      for name, cfg in (results.get("configs") or {}).items()},
                     "lm_eval_results_config": _json_safe({k: v for k, v in (results.get("config") or {}).items()
                                                           if k != "model_args"})}
        return ScoreResult(samples=self._samples(results), metrics=self._metrics(results))

    def _logging_quiet(self) -> None:
        logging.getLogger("lm_eval").setLevel(logging.WARNING)  # lm-eval's INFO lines would bury spar's progress

    def _model(self, spec: Any, backend: Any) -> tuple[Any, dict]:
        """lm-eval's model for the run's spec, and what the record says of it (model type and arguments)."""
        from lm_eval.api.registry import get_model
        from lm_eval.utils import simple_parse_args_string

        o = self.options
        extra = simple_parse_args_string(o.model_args) if o.model_args else {}
        batch = o.batch_size or spec.batch_size
        if batch == "auto" and not o.batch_size:
            # the spec's `auto` is spar's choice (the hf backend's, from free GPU memory; 8 on CPU), not lm-eval's
            # search, which on CPU has no out-of-memory signal to stop it and can take all of the machine's memory
            batch = getattr(backend, "batch_size", None) or spec.fixed_batch()
        kind = spec.backend
        try:
            if kind == "hf":
                if not extra and getattr(backend, "model", None) is not None \
                        and getattr(backend, "tokenizer", None) is not None:
                    from lm_eval.models.huggingface import HFLM

                    lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, batch_size=batch)
                    args = {"pretrained": backend.model_ref.path if hasattr(backend, "model_ref") else spec.name,
                            "dtype": getattr(backend, "dtype", spec.dtype),
                            "device": getattr(backend, "device", spec.device), "batch_size": batch}
                    return lm, {"model": "hf", "model_args": args, "weights": "shared with spar's hf backend"}
                from harness.core.models import resolve_model

                resolved = resolve_model(spec.name, revision=spec.revision or None)
                device = getattr(backend, "device", None) or spec.device
                dtype = getattr(backend, "dtype", None) or spec.dtype
                args = {"pretrained": resolved.path, "dtype": dtype, "device": device, "batch_size": batch, **extra}
                return get_model("hf").create_from_arg_obj(args, {}), {"model": "hf", "model_args": args,
                                                                       "weights": "loaded by lm-eval"}
            if kind == "openai":
                return self._openai_model(spec, extra, batch, get_model)
            if kind == "vllm":
                raise SparError(f"{self.name}: lm-eval tasks do not run on the in-process vllm backend (a second "
                                f"engine would not fit beside spar's): use --backend hf, or serve the model "
                                f"(vllm serve) and use --backend openai")
            if extra:
                raise SparError(f"{self.name}: model_args apply to lm-eval's hf and openai models, not to the "
                                f"{kind} backend")
            return _spar_lm(backend, self.name), {"model": f"spar backend {kind}",
                                                  "model_args": {"identity": getattr(backend, "identity", None)}}
        except ModuleNotFoundError as exc:
            raise SparError(f"{self.name}: lm-eval's {kind} model needs a missing package ({exc.name}); pip install "
                            f"'lm-eval[api]' for the openai backend") from None
        except (OSError, ValueError, TypeError) as exc:
            raise SparError(f"{self.name}: lm-eval cannot build its {kind} model: {type(exc).__name__}: "
                            f"{_first_line(exc)}") from None

    def _openai_model(self, spec: Any, extra: dict, batch: Any, get_model) -> tuple[Any, dict]:
        from urllib.parse import urlsplit, urlunsplit

        from harness.core.backends.openai_compat import redact_url

        o = self.options
        base = spec.base_url.split(",")[0].strip()
        parts = urlsplit(base)
        suffix = "/chat/completions" if o.api == "chat" else "/completions"
        url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, parts.query, ""))
        args: dict[str, Any] = {"model": spec.name, "base_url": url, "num_concurrent": spec.max_concurrency,
                                "max_retries": spec.max_retries, "timeout": int(spec.timeout_s)}
        if o.api == "chat":
            args.update(tokenizer_backend=None, tokenized_requests=False)
            model_type = "local-chat-completions"
        else:
            args.update(tokenizer_backend="huggingface", tokenizer=o.tokenizer or spec.name,
                        batch_size=batch if batch != "auto" else 1)
            model_type = "local-completions"
        args.update(extra)
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        secret = {"header": {"Authorization": f"Bearer {key}"}} if key and "header" not in args else {}
        try:
            lm = get_model(model_type).create_from_arg_obj({**args, **secret}, {})
        except OSError as exc:
            if o.api != "completions":
                raise
            raise SparError(f"{self.name}: lm-eval's local-completions needs the model's Hugging Face tokenizer "
                            f"{args.get('tokenizer')!r} (--bench {self.name}.tokenizer=FOLDER or hub id): "
                            f"{_first_line(exc)}") from None
        shown = {k: (redact_url(v) if k == "base_url" and isinstance(v, str) else v) for k, v in args.items()
                 if k not in ("header", "auth_token", "api_key")}
        return lm, {"model": model_type, "model_args": shown, "api_key_env": spec.api_key_env}

    def _cache_path(self, model_info: dict, backend: Any) -> str | None:
        """lm-eval's response cache of this model (its identity, lm-eval's model type and arguments)."""
        from harness.core.paths import cache_dir

        identity = getattr(backend, "identity", None)
        if not identity:
            return None
        key = _sha256_json([identity, model_info, lm_eval_version()]).split(":")[1][:24]
        return str(cache_dir() / "lm-eval" / key)

    # ------------------------------------------------------------------------------------------- results
    def _samples(self, results: dict) -> list[dict]:
        out = []
        for task, rows in (results.get("samples") or {}).items():
            for row in rows:
                out.append(_json_safe({"task": task, **row}))
        return out

    def _metrics(self, results: dict) -> dict:
        table = results.get("results") or {}
        leaves = [t for t in (results.get("samples") or {}) if t in table] or [t for t in table if t != self.task]
        n_samples = results.get("n-samples") or {}
        metrics: dict[str, Any] = {"task": self.task, "lm_eval_version": results.get("lm_eval_version")
                                   or lm_eval_version()}
        metrics.update(_metric_fields(table.get(self.task, {})))
        if leaves != [self.task]:  # a group (its subgroups' and tasks' rows) or a tag (its tasks' rows)
            metrics["per_task"] = {t: _metric_fields(row) for t, row in table.items() if t != self.task}
        metrics["n"] = sum(int((n_samples.get(t) or {}).get("effective", 0)) for t in leaves)
        metrics["n_total"] = sum(int((n_samples.get(t) or {}).get("original", 0)) for t in leaves)
        metrics["partial"] = metrics["n"] < metrics["n_total"]
        metrics["num_fewshot"] = _json_safe(results.get("n-shot", {}))
        metrics["versions"] = _json_safe(results.get("versions", {}))
        metrics["higher_is_better"] = _json_safe(results.get("higher_is_better", {}))
        return metrics

    # -------------------------------------------------------------------------------------------- report
    def summary_rows(self, metrics: dict) -> list[tuple[str, Any]]:
        rows = [(k, _shown(k, v)) for k, v in metrics.items() if _is_metric(k, v) and "_stderr," not in k]
        if not rows and metrics.get("per_task"):  # a tag: no aggregate row; each task's own
            for task, values in metrics["per_task"].items():
                rows += [(f"{task} {k}", _shown(k, v)) for k, v in values.items() if "_stderr," not in k]
        return rows

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
        rows = []
        for task, values in [(self.task or metrics.get("task", ""), metrics), *metrics.get("per_task", {}).items()]:
            for key, value in values.items():
                if not _is_metric(key, value) or "_stderr," in key:
                    continue
                metric, _, filt = key.partition(",")
                stderr = values.get(f"{metric}_stderr,{filt}")
                rows.append([task, metric, filt, _shown(key, value),
                             _shown(key, stderr) if isinstance(stderr, (int, float)) else "-"])
        if not rows:
            return []
        title = f"{self.name or metrics.get('task', '')} (lm-eval {metrics.get('lm_eval_version', '')}, " \
                f"n={metrics.get('n')})"
        return [(title, ["task", "metric", "filter", "value", "stderr"], rows)]

    def describe(self) -> dict:
        return {"lm_eval_version": lm_eval_version(), "lm_eval_task": self.task,
                "options": to_dict(self.options), **self._ran}

    # ------------------------------------------------------------- the request/score path is not used
    def requests(self, data: LoadedData, config: GenerationConfig) -> list[ChatRequest]:
        raise SparError(f"{self.name}: lm-eval drives this benchmark's generation (spar eval runs it)")

    def score(self, data: LoadedData, responses: Sequence[str],
              judgments: Sequence[Sequence[str]] | None = None) -> ScoreResult:
        raise SparError(f"{self.name}: lm-eval scores this benchmark (spar eval runs it)")

    def match_outputs(self, data: LoadedData, path: str, fmt: str | None = None, allow_partial: bool = False,
                      skip_invalid: bool = False) -> tuple[LoadedData, list]:
        raise SparError(f"spar score does not read outputs of {self.name}: run it with spar eval --benchmarks "
                        f"{self.name}")


def _metric_fields(row: dict) -> dict:
    """A results row of lm-eval without its non-metric fields; names stay lm-eval's (`metric,filter`)."""
    return {k: _json_safe(v) for k, v in row.items() if "," in k}


def _is_metric(key: str, value: Any) -> bool:
    return "," in key and isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(key: str, value: Any) -> Any:
    """Fractions stay floats (the CLI shows them in %); other metrics (perplexity, BLEU ...) as lm-eval prints them."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    metric = key.partition(",")[0].removesuffix("_stderr")
    return float(value) if metric in FRACTIONS else f"{value:.4f}"
