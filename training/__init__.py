"""Training: LoRA adapters (train_lora), teacher pairs (make_pairs) and student distillation (distill).
Heavy libraries are imported inside the functions that need them."""


def progress_bar(total: int, desc: str, unit: str = "step"):
    """A tqdm bar and the `on_progress(step, total, info)` callback that drives it (loss shown when given)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit)

    def on_progress(step, _total, info):
        bar.n = step
        if "loss" in info:
            bar.set_postfix(loss=f"{info['loss']:.4f}")
        bar.refresh()

    return bar, on_progress
