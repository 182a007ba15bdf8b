"""``python -m healthgpt_lite`` / ``healthgpt-lite``: the project's command line.

    healthgpt-lite reproduce                      the end-to-end pipeline (cpu profile) -> results/
    healthgpt-lite reproduce --seeds 3            the same for seeds 0, 1, 2: mean and spread of every number
    healthgpt-lite reproduce --recipe qilin       Qilin-Med-VL's recipe beside HealthGPT -> results/qilin.md
    healthgpt-lite reproduce --ablations          the paper's ablations in miniature -> results/ablations.md
    healthgpt-lite fit --config configs/tiny_cpu.yaml --model.stage stage2   one stage, LightningCLI
    healthgpt-lite data generate --out DIR        a VL-Health-lite data set (--profile/--set)
    healthgpt-lite data sample --out data_samples the committed sample + tokenizer
    healthgpt-lite data tokenizer --out DIR --codes N
    healthgpt-lite data convert --format slake IN OUT   VQA-RAD / SLAKE / PathVQA -> LLaVA JSON
    healthgpt-lite config --preset m3 --profile full   every setting of a run as YAML, the preset's parameters
                                                  (--fit-config configs/m3_stage3.yaml: what a fit YAML resolves to)
    healthgpt-lite plan --config configs/m3_stage1.yaml  parameters and memory per GPU (meta device)
    healthgpt-lite benchmark TEST.json --images DIR     closed / open scores on a converted benchmark
    healthgpt-lite answer IMAGE QUESTION --artifacts DIR   a trained model answers (or the released weights:
                                                  --hlora com_hlora_weights.bin --llm PHI3_DIR --clip CLIP_DIR)
    healthgpt-lite generate INSTRUCTION --image IMG --out OUT.png   draw an image (released: --hlora
                                                  gen_hlora_weights.bin --fusion ... --vqgan last.ckpt ...)
    healthgpt-lite vq --split test                the VQ tokenizer's PSNR, SSIM and codebook use (trains it if missing)
    healthgpt-lite notebooks sync|check           rebuild/check the .ipynb paired to each .py
    healthgpt-lite bench hlora --out CSV          step time/memory: LoRA vs MoELoRA vs H-LoRA
    healthgpt-lite bench stages                   tokens/s of every training stage; Lightning vs Python vs matmuls
    healthgpt-lite gpu-check --mode pipeline --out FILE.json   one GPU: the small pipeline timed (MFU, memory,
                                                  metrics); --mode m3-step: an M3 stage-3 step vs its plan
    healthgpt-lite exercises build [--check]      student copies from the solution notebooks
    healthgpt-lite exercises grade SUBMISSIONS/   run and grade submitted notebooks (--out, --timeout)
    healthgpt-lite book [--profile cpu]           execute every notebook, render it offline -> build/book/
    healthgpt-lite browser-check --screenshot PNG notebook 09's widgets in JupyterLab in headless Chromium
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HealthGPTLiteError


def _config_args(p: argparse.ArgumentParser, profile: str = "cpu") -> None:
    p.add_argument("--preset", default="tiny")
    p.add_argument("--profile", default=profile)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override, e.g. --set vq.n_embed=256 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="healthgpt-lite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="the end-to-end pipeline; writes results/REPORT.md")
    _config_args(rep)
    rep.add_argument("--artifacts", default=None, help="artifacts folder (default: ./artifacts)")
    rep.add_argument("--out", default="results")
    rep.add_argument("--recipe", choices=["healthgpt", "qilin"], default="healthgpt",
                     help="healthgpt: the three-stage pipeline (REPORT.md); qilin: Qilin-Med-VL's two-stage "
                          "recipe beside HealthGPT's comprehension plugin on the Chinese records (qilin.md)")
    rep.add_argument("--seeds", type=int, default=1,
                     help="train and evaluate the three stages for seeds SEED..SEED+N-1; report mean and spread")
    rep.add_argument("--split", choices=["test", "val"], default="test",
                     help="val: score the models on the validation patients, where options are chosen "
                          "(give another --out); test: the report of record")
    rep.add_argument("--ablations", action="store_true",
                     help="the paper's ablations in miniature (PEFT, experts, three stages vs mixed, HVP, task "
                          "conflict) -> ablations.md / ablations.json (notebook 10)")

    data = sub.add_parser("data", help="make data sets, the committed sample and the tokenizer")
    dsub = data.add_subparsers(dest="data_command", required=True)
    gen = dsub.add_parser("generate", help="render a VL-Health-lite data set")
    _config_args(gen)
    gen.add_argument("--out", required=True)
    smp = dsub.add_parser("sample", help="rebuild data_samples/ (sample + tokenizer)")
    smp.add_argument("--out", default="data_samples")
    tk = dsub.add_parser("tokenizer", help="train the byte-level BPE tokenizer")
    tk.add_argument("--out", required=True)
    tk.add_argument("--codes", type=int, default=512, help="number of <idx_*> image tokens (VQ codebook size)")
    tk.add_argument("--vocab-size", type=int, default=1024)

    cv = dsub.add_parser("convert", help="a medical VQA benchmark's source file -> LLaVA JSON records")
    cv.add_argument("--format", required=True, choices=["vqa-rad", "slake", "pathvqa"])
    cv.add_argument("source")
    cv.add_argument("out")
    cv.add_argument("--split", default="all", choices=["all", "train", "val", "validate", "validation", "test"],
                    help="VQA-RAD's public file: by phrase_type; a file that is one split (SLAKE, MEVF, exports): "
                         "must be the split its name says")
    cv.add_argument("--lang", default="all", help="SLAKE: en | zh | all (any case)")
    cv.add_argument("--images", default=None, help="check that every image exists under this folder")
    cv.add_argument("--skip-invalid", action="store_true",
                    help="skip rows that cannot become a record (e.g. SLAKE train's empty answer), with a warning each")

    shown = sub.add_parser("config", help="the resolved config (shapes, budgets, options) as YAML, with the "
                                          "preset's parameter count")
    _config_args(shown)
    shown.add_argument("--fit-config", default=None, help="a fit YAML: the config its model section resolves to")
    shown.add_argument("--section", action="append", default=[], help="only this section, e.g. vq (repeatable)")

    plan = sub.add_parser("plan", help="parameters, tokens and memory per GPU of each stage (meta device)")
    _config_args(plan, profile="full")
    plan.add_argument("--gpus", type=int, default=8)
    plan.add_argument("--config", default=None, help="a fit YAML: its preset, overrides, GPUs and stage")

    bm = sub.add_parser("benchmark", help="closed accuracy / open scores on a converted VQA-RAD, SLAKE or PathVQA")
    bm.add_argument("records", help="the test split converted with `data convert`")
    bm.add_argument("--images", default=".", help="folder the records' image paths are relative to")
    bm.add_argument("--predictions", default=None, help="JSON lines {id, prediction}: score these, load no model")
    bm.add_argument("--config", default=None, help="a fit YAML of the run: its preset, overrides and artifacts_dir")
    bm.add_argument("--artifacts", default=None, help="the trained stages (the fit runs' artifacts_dir)")
    bm.add_argument("--out", default=None, help="write scores.json and predictions.jsonl here")
    bm.add_argument("--batch-size", type=int, default=16)
    _config_args(bm, profile="full")

    ans = sub.add_parser("answer", help="answer a question about an image: a trained model or the released weights")
    ans.add_argument("image")
    ans.add_argument("question")
    ans.add_argument("--max-new-tokens", type=int, default=1024, help="as the released scripts (greedy decoding)")
    _model_args(ans, "com_hlora_weights.bin (L14: com_hlora_weights_phi4.bin)")
    gen = sub.add_parser("generate", help="draw an image from an instruction (and an input image)")
    gen.add_argument("instruction")
    gen.add_argument("--image", default=None, help="the input image (CT->MRI, super-resolution, reconstruction)")
    gen.add_argument("--out", required=True, help="where the PNG goes")
    _model_args(gen, "gen_hlora_weights.bin")

    fit = sub.add_parser("fit", help="train one stage with LightningCLI (--config configs/<preset>*.yaml; --help there)",
                         add_help=False)
    fit.add_argument("lightning_args", nargs=argparse.REMAINDER)

    vq = sub.add_parser("vq", help="measure the VQ tokenizer (trains it first if missing): PSNR, SSIM, codebook use")
    _config_args(vq)
    vq.add_argument("--split", default="test", choices=["train", "val", "test"])
    vq.add_argument("--artifacts", default=None, help="artifacts folder (default: ./artifacts)")
    vq.add_argument("--threads", type=int, default=2, help="CPU threads (the targets are for 2 cores)")

    nbs = sub.add_parser("notebooks", help="rebuild the .ipynb of every jupytext .py source")
    nbs.add_argument("action", choices=["sync", "check"])

    bench = sub.add_parser("bench", help="speed/memory benchmarks (sizes, repeats: --set bench.KEY=VALUE)")
    bench.add_argument("action", choices=["hlora", "stages"])
    _config_args(bench)
    bench.add_argument("--out", default=None, help="CSV to write (default: results/bench_<action>.csv)")
    bench.add_argument("--device", default="cpu", help="cpu | cuda")
    gc = sub.add_parser("gpu-check", help="one GPU: the small pipeline end to end, or an M3 stage-3 step, measured "
                                          "(wall time, tokens/s, MFU, peak memory, targets) -> one JSON")
    gc.add_argument("--mode", required=True, choices=["pipeline", "m3-step"],
                    help="pipeline: --preset/--profile end to end (default small, gpu); m3-step: stage-3 steps of "
                         "HealthGPT-M3's shapes with random weights vs the meta-device plan")
    gc.add_argument("--out", required=True, help="the JSON to write (schema: healthgpt_lite/bench/gpu_result.py)")
    gc.add_argument("--allow-cpu", action="store_true",
                    help="run without a GPU (to test the script; its numbers measure nothing)")
    gc.add_argument("--budget-minutes", type=float, default=8.0, help="pipeline: the time target (default 8)")
    gc.add_argument("--peak-tflops", type=float, default=None,
                    help="the GPU's dense bf16 peak in TFLOP/s, for MFU (default: bench/gpu_peaks.py's table)")
    _config_args(gc, profile="gpu")
    gc.set_defaults(preset="small")
    gc.add_argument("--artifacts", default=None, help="pipeline: artifacts folder (default: a fresh temporary one)")
    gc.add_argument("--fit-config", default="configs/m3_stage3.yaml", help="m3-step: the run whose per-GPU batch is planned")
    gc.add_argument("--warmup", type=int, default=2, help="m3-step: untimed steps first")
    gc.add_argument("--steps", type=int, default=5, help="m3-step: timed steps")
    ex = sub.add_parser("exercises", help="build student copies of the exercises; grade submissions")
    esub = ex.add_subparsers(dest="exercises_command", required=True)
    build = esub.add_parser("build", help="exercises/*/solution.py -> student.py/.ipynb (+ solution.ipynb)")
    build.add_argument("--check", action="store_true", help="only report stale copies (exit 1), write nothing")
    grade = esub.add_parser("grade", help="run every SUBMISSIONS/<student>/<NN_exercise>.ipynb and tabulate verdicts")
    grade.add_argument("submissions")
    grade.add_argument("--out", default="grades", help="where grades.csv, grades.md and executed/ go")
    grade.add_argument("--timeout", type=float, default=300, help="seconds per notebook before it is killed")
    book = sub.add_parser("book", help="execute every notebook in one profile and render it to a static site")
    book.add_argument("--profile", default="cpu")
    book.add_argument("--out", default="build/book")
    book.add_argument("--artifacts", default=None, help="artifacts folder (default: the one `make reproduce` uses)")
    book.add_argument("--only", nargs="+", default=None, metavar="PREFIX", help="only these notebooks, e.g. 00 01")
    book.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per notebook before it is killed")
    bc = sub.add_parser("browser-check", help="run notebook 09 in JupyterLab in headless Chromium; check its widgets")
    bc.add_argument("--profile", default="smoke")
    bc.add_argument("--artifacts", default=None, help="artifacts folder (default: ./artifacts)")
    bc.add_argument("--screenshot", default=None, help="where to save a PNG of the widget it changed")
    bc.add_argument("--timeout", type=float, default=900, help="seconds for running the notebook in the browser")
    return parser


def _show_config(args) -> int:
    """``healthgpt-lite config``: every value a run would use, and what the preset's model weighs."""
    from .config import as_yaml, build_config
    from .errors import ConfigError
    from .scale.plan import parameter_summary

    if args.fit_config:
        from .scale.dry_run import config_of, parse_fit_config

        cfg = config_of(parse_fit_config(args.fit_config))
    else:
        cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
    values = cfg.to_dict()
    if unknown := [s for s in args.section if s not in values]:
        raise ConfigError(f"unknown section {unknown[0]!r}; choose from {', '.join(values)}")
    print(as_yaml({s: values[s] for s in args.section} if args.section else values), end="")
    print(f"# {cfg.preset} parameters: {parameter_summary(cfg)}")
    return 0


def _model_args(p: argparse.ArgumentParser, hlora_file: str) -> None:
    p.add_argument("--artifacts", default=None, help="a model trained here (make reproduce): its artifacts folder")
    p.add_argument("--profile", default=None, help="with --artifacts: the profile it was trained in (default: newest)")
    p.add_argument("--preset", default=None, help="with --artifacts: its preset; released: the VQGAN's shapes (m3)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    r = p.add_argument_group("the released HealthGPT weights (instead of --artifacts)")
    r.add_argument("--hlora", default=None, help=f"the released H-LoRA file: {hlora_file}")
    r.add_argument("--llm", default=None, help="local folder of Phi-3-mini-4k-instruct (M3) or phi-4 (L14)")
    r.add_argument("--clip", default=None, help="local folder of openai/clip-vit-large-patch14-336")
    r.add_argument("--fusion", default=None, help="fusion_layer_weights.bin (stage-2 embeddings and head; generation)")
    r.add_argument("--vqgan", default=None, help="taming VQGAN f8-8192 last.ckpt (generation)")
    r.add_argument("--template", default="auto", choices=["auto", "phi3", "phi4"])
    r.add_argument("--system-prompt", default=None, help="default: 'You are a helpful AI assistant.'")
    r.add_argument("--alpha", type=float, default=None, help="H-LoRA alpha (default 2 x rank, as released)")
    r.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    r.add_argument("--device", default="cpu", help="cpu | cuda")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["fit"]:  # LightningCLI parses its own arguments (and its --help)
            from .training.fit_cli import main as fit_main

            fit_main(argv)
            return 0
        return _dispatch(build_parser().parse_args(argv))
    except HealthGPTLiteError as e:  # bad input: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    from .config import build_config

    if args.command == "reproduce":
        from .pipelines.reproduce import reproduce
        from .pipelines.qilin import reproduce_qilin

        cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
        if args.ablations:
            from .pipelines.ablations import reproduce_ablations

            reproduce_ablations(cfg, artifacts_dir=args.artifacts, out_dir=args.out)
            return 0
        if args.recipe == "qilin":
            reproduce_qilin(cfg, artifacts_dir=args.artifacts, out_dir=args.out)
        else:
            reproduce(cfg, artifacts_dir=args.artifacts, out_dir=args.out, seeds=args.seeds, split=args.split)
        return 0
    if args.command == "data":
        if args.data_command == "generate":
            from .data.generate import generate_dataset

            cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
            print(generate_dataset(args.out, cfg.data, progress=True))
        elif args.data_command == "sample":
            from .data.samples import build_samples

            print(build_samples(args.out))
        elif args.data_command == "convert":
            from .data.convert import convert_file

            print(convert_file(args.source, args.out, args.format, args.split, args.lang, args.images, args.skip_invalid))
        elif args.data_command == "tokenizer":
            from .data.samples import build_tokenizer

            print(build_tokenizer(Path(args.out), n_codes=args.codes, vocab_size=args.vocab_size))
        return 0
    if args.command == "notebooks":
        from .course.nbsync import out_of_sync, paired_sources, sync

        problems = []
        for py in paired_sources():
            if args.action == "sync":
                print(sync(py))
            elif (why := out_of_sync(py)):
                problems.append(why)
        if args.action == "check":
            print("\n".join(problems) or "all notebooks in sync")
        return 1 if problems else 0
    if args.command == "bench":
        cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
        out = args.out or f"results/bench_{args.action}.csv"
        if args.action == "stages":
            from .bench.stages import run_cli as run_stages

            run_stages(cfg, out)
        else:
            from .bench.plugin_speed import run_cli

            run_cli(cfg, out, args.device)
        return 0
    if args.command == "vq":
        import json

        import torch

        from .vq.measure import measure_vq

        torch.set_num_threads(args.threads)
        cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
        print(json.dumps(measure_vq(cfg, args.artifacts, args.split)))
        return 0
    if args.command == "config":
        return _show_config(args)
    if args.command == "plan":
        return _plan(args)
    if args.command == "gpu-check":
        from .bench.gpu_check import run_cli as gpu_check

        return gpu_check(args)
    if args.command == "benchmark":
        return _benchmark(args)
    if args.command == "exercises":
        return _exercises(args)
    if args.command == "answer":
        print(_inference_model(args, "comprehension").answer(args.image, args.question, args.max_new_tokens))
        return 0
    if args.command == "generate":
        _inference_model(args, "generation").generate_image(args.instruction, image=args.image).save(args.out)
        print(args.out)
        return 0
    if args.command == "book":
        from .course.book import build_book

        chapters = build_book(args.out, args.profile, args.artifacts, args.only, args.timeout)
        print(f"{Path(args.out) / 'index.html'}: {len(chapters)} notebooks in {sum(c.wall_s for c in chapters) / 60:.1f} min")
        return 0 if all(c.ok for c in chapters) else 1
    if args.command == "browser-check":
        from .artifacts import default_artifacts_dir
        from .course.browser_check import run_browser_check

        result = run_browser_check(args.artifacts or default_artifacts_dir(), args.screenshot, args.timeout, args.profile)
        print(result.summary())
        return 0
    raise AssertionError(args.command)


def _inference_model(args, task: str):
    """The model ``answer`` / ``generate`` run: the released weights (``--hlora``) or a trained one."""
    from .errors import InputError

    if not args.hlora:
        from .artifacts import default_artifacts_dir
        from .model.inference import HealthGPTLite

        return HealthGPTLite.from_artifacts(args.artifacts or default_artifacts_dir(), args.profile, args.preset)
    import torch

    from .data.text_tokenizer import SYSTEM_PROMPT
    from .released import ReleasedHealthGPT

    if args.artifacts or not (args.llm and args.clip):
        raise InputError("the released weights need --llm (Phi-3-mini / phi-4 folder) and --clip (CLIP ViT-L/14-336 "
                         "folder) with --hlora, and no --artifacts (that is a model trained here)")
    return ReleasedHealthGPT.from_files(args.llm, args.clip, {task: args.hlora}, fusion=args.fusion,
                                        vqgan=args.vqgan, preset=args.preset or "m3", overrides=args.overrides,
                                        template=args.template, system_prompt=args.system_prompt or SYSTEM_PROMPT,
                                        alpha=args.alpha, dtype=getattr(torch, args.dtype), device=args.device)


def _exercises(args) -> int:
    if args.exercises_command == "build":
        from .exercises.authoring import build, stale

        if args.check:
            problems = stale()
            print("\n".join(problems) or "all student copies up to date")
            return 1 if problems else 0
        print("\n".join(str(p) for p in build()) or "all student copies were up to date")
        return 0
    from .exercises.grading import grade_submissions

    table = grade_submissions(args.submissions, args.out, timeout_s=args.timeout)
    print(table.markdown_path.read_text(encoding="utf-8"))
    return 0


def _plan(args) -> int:
    from .config import build_config
    from .scale.plan import ORDER, print_plan

    if args.config:
        from .scale.dry_run import parse_fit_config, plan_config, stages_of

        ns = parse_fit_config(args.config)
        print(print_plan(plan_config(ns), int(ns.trainer.devices) * int(ns.trainer.num_nodes), stages_of(ns)))
    else:
        print(print_plan(build_config(args.preset, args.profile, args.overrides, seed=args.seed), args.gpus, ORDER))
    return 0


def _benchmark(args) -> int:
    import json

    from .eval.benchmarks import benchmark_records, evaluate_benchmark, predict, read_predictions

    if args.predictions:
        predictions = read_predictions(args.predictions)
    else:
        from .config import build_config
        from .model.inference import HealthGPTLite
        from .training.stages import ORDER

        cfg, artifacts = build_config(args.preset, args.profile, args.overrides, seed=args.seed), args.artifacts
        if args.config:  # the very config the stages were trained with
            from .scale.dry_run import config_of, parse_fit_config

            ns = parse_fit_config(args.config)
            cfg, artifacts = config_of(ns), args.artifacts or ns.model.artifacts_dir
        gpt = HealthGPTLite.from_config(cfg, artifacts, stages=ORDER)
        predictions = predict(gpt, benchmark_records(args.records), args.images, args.batch_size, progress=True)
    print(json.dumps(evaluate_benchmark(args.records, predictions, args.out)["scores"], indent=1))
    return 0
