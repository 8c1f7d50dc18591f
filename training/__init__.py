"""Training: LoRA adapters (train_lora), and later paired data and student distillation. Imports lazily."""
