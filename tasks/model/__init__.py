"""Model plumbing: BLAS, GGUF conversion, tokenizer, pulling, loading and answering."""
