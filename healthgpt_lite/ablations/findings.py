"""What each ablation found, in words, beside what the paper reports: generated from the numbers
of this run, so a notebook or report never claims an ordering its own table does not show.

A difference counts as *beyond the seed spread* when it is larger than the two rows' standard
deviations together; with one seed there is no spread to compare with, and the sentence says so.
"""
from __future__ import annotations

def _stat(rows: list[dict], run: str, metric: str) -> dict:
    return next(r["ours"][metric] for r in rows if r["run"] == run)


def compare(rows: list[dict], a: str, b: str, metric: str, higher_is_better: bool = True) -> str:
    """``a`` vs ``b`` on ``metric``: both means, which is better, and whether it exceeds the spread."""
    sa, sb = _stat(rows, a, metric), _stat(rows, b, metric)
    if sa["mean"] is None or sb["mean"] is None:
        return f"{a} vs {b}: {metric} not measured in this profile"
    d = sa["mean"] - sb["mean"]
    better = a if (d > 0) == higher_is_better else b
    if d == 0:
        verdict = "equal"
    elif len(sa["values"]) < 2 or len(sb["values"]) < 2:
        verdict = f"{better} better by {abs(d):.3f} (one seed: no spread measured)"
    elif abs(d) > sa["std"] + sb["std"]:
        verdict = f"{better} better by {abs(d):.3f}, beyond the seed spread"
    else:
        verdict = f"{better} better by {abs(d):.3f}, within the seed spread ({sa['std']:.3f}, {sb['std']:.3f})"
    return f"{metric}: {a} {sa['mean']:.3f} vs {b} {sb['mean']:.3f}: {verdict}"


def findings(rows_by_table: dict[str, list[dict]]) -> dict[str, list[str]]:
    """One list of sentences per table: the paper's claim, then ours."""
    out: dict[str, list[str]] = {}
    if "peft" in rows_by_table:
        rows = rows_by_table["peft"]
        lora, moe, hl = (r["run"] for r in rows)
        out["peft"] = [
            "paper: comprehension H-LoRA 74.6 > LoRA 70.0 > MoELoRA 66.4; reconstruction H-LoRA 67.69 ~ MoELoRA "
            "67.31 > LoRA 62.67; time MoELoRA 1.49x, H-LoRA 1.00x of LoRA.",
            compare(rows, hl, lora, "closed"), compare(rows, hl, moe, "closed"),
            compare(rows, hl, lora, "recon_ssim"), compare(rows, hl, moe, "recon_ssim"),
            compare(rows, hl, moe, "time_vs_lora", higher_is_better=False)]
    if "experts" in rows_by_table:
        rows = rows_by_table["experts"]
        times = ", ".join(f"{r['row']} {r['ours']['time_vs_lora']['mean']:.2f}x" for r in rows
                          if r["ours"]["time_vs_lora"]["mean"] is not None)
        out["experts"] = ["paper: MoELoRA's time grows with k (1.22x / 1.49x / 2.09x at 2 / 4 / 8), H-LoRA's stays "
                          "at 1.00x.", f"ours (time relative to LoRA): {times}."]
    if "tls" in rows_by_table:
        rows = rows_by_table["tls"]
        ref, mixed = (r["run"] for r in rows)
        out["tls"] = ["paper: the mixed run loses on both sides (SLAKE closed 45.0 vs 77.9, CT SSIM 65.6 vs 70.8).",
                      compare(rows, ref, mixed, "closed"), compare(rows, ref, mixed, "open"),
                      compare(rows, ref, mixed, "ct2mri_ssim")]
    if "hvp" in rows_by_table:
        rows = rows_by_table["hvp"]
        ref, deep, shallow = (r["run"] for r in rows)
        out["hvp"] = ["paper's design: the deep layer serves comprehension, the shallow one generation.",
                      compare(rows, ref, shallow, "closed"), compare(rows, ref, shallow, "open"),
                      compare(rows, ref, deep, "ct2mri_ssim"), compare(rows, ref, deep, "recon_ssim")]
    if "conflict" in rows_by_table:
        rows = rows_by_table["conflict"]
        runs = [r["run"] for r in rows]
        shared, separate = runs[: len(runs) // 2], runs[len(runs) // 2:]
        out["conflict"] = ["paper's motivation: adding generation data to a shared adapter hurts comprehension; "
                           "separate plugins do not share the weights, so they should not.",
                           "shared " + compare(rows, shared[0], shared[-1], "closed"),
                           "separate " + compare(rows, separate[0], separate[-1], "closed")]
    return out
