"""The gallery of enrolled people: SQL rows kept in step with the per-domain FAISS index."""
