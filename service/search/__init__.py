"""The FAISS identity index: one IVF index per domain, persisted atomically, rebuilt from SQL on demand."""
