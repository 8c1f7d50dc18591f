"""Studio tabs: one module each, with TITLE, render(ctx) and listen(ctx, ui)."""
