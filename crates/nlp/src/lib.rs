//! Zero-shot topic classification (filled in by the NLP work).
