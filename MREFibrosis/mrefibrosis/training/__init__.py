"""Training and tuning on a site's own annotated exams (the seed paper's recipe by default)."""
