"""What every tickcast service shares: settings base, topic names, contracts, codecs and logging."""
