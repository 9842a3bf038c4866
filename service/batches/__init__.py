"""The batch pipeline (photos -> entries), summaries, storage and CSV export."""
